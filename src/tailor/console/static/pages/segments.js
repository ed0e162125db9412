// Segments: every segment with its size, and the way to build a new one.

import { get } from "../lib/api.js";
import { h, num, table, link, when } from "../lib/dom.js";

export default async function render(root, ctx) {
  const segments = await get("/api/v1/segments", null, { signal: ctx.signal });
  const list = Array.isArray(segments) ? segments : segments.segments || segments.definitions || [];
  root.append(
    h("div.page-head", h("h1", "Segments"), h("a.button.primary", { href: "/segments/new", "data-link": true }, "New segment")),
    h(
      "div#segment-list",
      table(
        [
          { label: "Segment", cell: (s) => link(`/segments/${encodeURIComponent(s.name)}`, s.name) },
          { label: "Description", cell: (s) => s.definition.description || "" },
          { label: "Members", numeric: true, cell: (s) => num(s.members) },
          { label: "Version", numeric: true, cell: (s) => String(s.version) },
          { label: "Updated", cell: (s) => when(s.updated_at) },
        ],
        list,
        { empty: "No segments yet." },
      ),
    ),
  );
}
