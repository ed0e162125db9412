// People: find a person by any identifier or name, then open their profile.

import { h } from "../lib/dom.js";
import { searchBox } from "../lib/search.js";

export default async function render(root, ctx) {
  const initial = ctx.query.get("q") || "";
  const box = searchBox({
    initial,
    signal: ctx.signal,
    hrefFor: (hit) => `/profiles/${encodeURIComponent(hit.profile_id)}`,
    onPick: (hit) => ctx.navigate(`/profiles/${encodeURIComponent(hit.profile_id)}`),
  });
  root.append(h("h1", "People"), box.element);
  box.input.addEventListener("input", () => history.replaceState(null, "", `/people?q=${encodeURIComponent(box.input.value)}`));
  if (initial) await box.run();
  box.input.focus();
}
