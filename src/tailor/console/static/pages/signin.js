// Sign-in with a console user (`tailor access add-user`, or the user `tailor demo` prints).

import { signIn, whoami } from "../lib/api.js";
import { h, notice } from "../lib/dom.js";
import { field, input, showProblems, clearProblems } from "../lib/forms.js";

export default async function render(root, ctx) {
  const username = input({ name: "username", autocomplete: "username", required: true });
  const password = input({ name: "password", type: "password", autocomplete: "current-password", required: true });
  const status = h("div.status");
  const form = h(
    "form.signin.card",
    { novalidate: true },
    h("h1", "Sign in to Tailor"),
    ctx.query.get("expired") ? notice("Your session has ended; please sign in again.", "info") : null,
    field("Username", username, { path: "username" }),
    field("Password", password, { path: "password" }),
    h("button.primary", { type: "submit" }, "Sign in"),
    status,
    h("p.hint", "Console users are created with ", h("code", "tailor access add-user"), "; ", h("code", "tailor demo"), " prints one."),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    status.replaceChildren();
    const problems = [];
    if (!username.value.trim()) problems.push({ path: "username", message: "Enter your username." });
    if (!password.value) problems.push({ path: "password", message: "Enter your password." });
    if (problems.length) return showProblems(form, problems);
    try {
      await signIn(username.value.trim(), password.value);
      ctx.setUser(await whoami());
      const next = ctx.query.get("next");
      ctx.navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
    } catch (error) {
      if (error.status === 401) showProblems(form, [{ path: "password", message: "Unknown user or wrong password." }]);
      else status.append(notice(error.message));
    }
  });
  root.append(form);
  username.focus();
}
