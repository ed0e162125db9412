// The person search box shared by the People and Privacy pages: any identifier or a name.

import { get } from "./api.js";
import { h, replace, table, notice } from "./dom.js";
import { field, input } from "./forms.js";

export function searchBox({ onPick, signal, initial = "", hrefFor }) {
  const q = input({ name: "q", type: "search", value: initial, placeholder: "email, phone, user id, device id, profile id or name" });
  const results = h("div.results", { id: "search-results" });
  const form = h("form.search", { role: "search", novalidate: true }, field("Find a person", q, { path: "q" }), h("button.primary", { type: "submit" }, "Search"));
  let seq = 0;
  async function run() {
    const query = q.value.trim();
    if (!query) return replace(results);
    const mine = ++seq;
    results.dataset.state = "loading";
    try {
      const answer = await get("/api/v1/console/search", { q: query, limit: 20 }, { signal });
      if (mine !== seq) return;
      replace(
        results,
        table(
          [
            { label: "Person", cell: (hit) => (hrefFor ? h("a", { href: hrefFor(hit), "data-link": true }, hit.name || hit.email || hit.profile_id) : h("button.link", { type: "button", onclick: () => onPick(hit) }, hit.name || hit.email || hit.profile_id)) },
            { label: "Email", cell: (hit) => hit.email || "—" },
            { label: "Matched", cell: (hit) => h("span", hit.matched, hit.exact ? h("span.badge.ok", "exact") : null) },
            { label: "Profile", cell: (hit) => h("code", hit.profile_id) },
          ],
          answer.hits,
          { empty: `No one matches “${query}”.`, className: "hits" },
        ),
      );
      results.dataset.state = "ready";
      if (answer.hits.length === 1 && answer.hits[0].exact && onPick) onPick(answer.hits[0]);
    } catch (error) {
      if (error.name !== "AbortError") replace(results, notice(error.message));
      results.dataset.state = "error";
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  return { element: h("div", form, results), run, input: q };
}
