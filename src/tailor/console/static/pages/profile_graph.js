// The identity graph of the profile page: identifiers as nodes, links as edges (solid when they
// join, dashed when a rule refused them), the evidence of the one selected, and the split actions.

import { post } from "../lib/api.js";
import { h, replace, when, notice, num, escapeHtml } from "../lib/dom.js";
import { chart, PALETTE } from "../lib/charts.js";

const TYPES = ["user_id", "email", "phone", "anonymous_id", "device_id", "crm_id", "record", "landline"];

const key = (type, value) => `${type}:${value}`;

export async function drawIdentityGraph(host, evidenceHost, identity, profile, ctx) {
  const nodes = new Map();
  const mine = new Set(identity.identifiers.map((i) => key(i.type, i.value)));
  for (const i of identity.identifiers) nodes.set(key(i.type, i.value), { type: i.type, value: i.value, profile: profile.profile_id, first_seen: i.first_seen, last_seen: i.last_seen });
  for (const e of identity.edges) {
    for (const end of [e.a, e.b]) {
      const k = key(end.type, end.value);
      if (!nodes.has(k)) nodes.set(k, { type: end.type, value: end.value, profile: end.profile_id });
    }
  }
  const categories = [...new Set([...nodes.values()].map((n) => n.type))].sort((a, b) => TYPES.indexOf(a) - TYPES.indexOf(b));
  const data = [...nodes.entries()].map(([k, n]) => ({
    id: k,
    name: n.value.length > 28 ? n.value.slice(0, 26) + "…" : n.value,
    category: categories.indexOf(n.type),
    symbolSize: mine.has(k) ? 22 : 14,
    itemStyle: mine.has(k) ? {} : { opacity: 0.45 },
    value: k,
  }));
  const links = identity.edges.map((e, index) => ({
    source: key(e.a.type, e.a.value),
    target: key(e.b.type, e.b.value),
    value: index,
    lineStyle: e.linking ? { width: 2, type: "solid", color: "#4b6584" } : { width: 1.5, type: "dashed", color: "#c4473a" },
  }));
  const instance = await chart(host, {
    tooltip: { formatter: (p) => (p.dataType === "edge" ? edgeLabel(identity.edges[p.data.value]) : escapeHtml(p.data.value)) },
    legend: [{ data: categories, top: 0 }],
    series: [
      {
        type: "graph",
        layout: "force",
        roam: true,
        draggable: true,
        force: { repulsion: 180, edgeLength: [60, 120], gravity: 0.08 },
        categories: categories.map((name, i) => ({ name, itemStyle: { color: PALETTE[i % PALETTE.length] } })),
        label: { show: true, position: "right", fontSize: 10 },
        data,
        links,
        emphasis: { focus: "adjacency" },
      },
    ],
  });
  host.dataset.nodes = String(data.length);
  host.dataset.edges = String(links.length);
  instance.on("click", (p) => {
    if (p.dataType === "edge") showEdge(identity.edges[p.data.value]);
    else if (p.dataType === "node") showNode(p.data.value);
  });
  // A list of the links too: the graph is for seeing, the list for reading and for keyboards.
  const list = h(
    "ul.edges",
    { id: "edge-list" },
    identity.edges.map((e) =>
      h("li", h("button.link", { type: "button", onclick: () => showEdge(e) }, `${key(e.a.type, e.a.value)} — ${key(e.b.type, e.b.value)}`), " ", h(`span.badge.${e.linking ? "ok" : "bad"}`, e.rule)),
    ),
  );
  host.parentElement.after(h("details.edge-list", h("summary", `${num(identity.edges.length)} links`), list));

  function showEdge(e) {
    const a = key(e.a.type, e.a.value);
    const b = key(e.b.type, e.b.value);
    const splittable = e.linking && mine.has(a) && mine.has(b);
    const ev = e.evidence;
    const match = e.match
      ? h("div", h("h4", `Record match: probability ${e.match.probability.toFixed(3)}, weight ${e.match.weight.toFixed(1)}`), h("ul", Object.entries(e.match.contributions || {}).map(([f, c]) => h("li", `${f}: ${typeof c === "object" ? JSON.stringify(c) : c}`))), e.match.veto ? h("p", `veto: ${e.match.veto}`) : null)
      : null;
    replace(
      evidenceHost,
      h("h3", "Link"),
      h("p", h("code", a), " — ", h("code", b)),
      h("p", h(`span.badge.${e.linking ? "ok" : "bad"}`, e.linking ? "joins" : "refused"), ` rule: ${e.rule}`, e.reason ? ` · ${e.reason}` : ""),
      h("dl", h("dt", "First evidence"), h("dd", `${ev.kind} · seq ${ev.seq} · ${when(ev.first_seen)}`), h("dt", "Message"), h("dd", h("code", ev.message_id)), h("dt", "Seen together"), h("dd", `${num(ev.events)} events (last seq ${ev.last_seq})`)),
      match,
      splittable ? splitForm({ remove_edge: [a, b] }, `Remove this link`) : null,
    );
    evidenceHost.dataset.selected = "edge";
  }

  function showNode(k) {
    const n = nodes.get(k);
    const owned = mine.has(k);
    replace(
      evidenceHost,
      h("h3", "Identifier"),
      h("p", h("code", k)),
      h("dl", h("dt", "Profile"), h("dd", n.profile ? h("a", { href: `/profiles/${encodeURIComponent(n.profile)}`, "data-link": true }, n.profile) : "—"), h("dt", "First seen"), h("dd", when(n.first_seen)), h("dt", "Last seen"), h("dd", when(n.last_seen))),
      owned && mine.size > 1 ? splitForm({ block: k }, "Block this identifier (it then links nothing)") : null,
    );
    evidenceHost.dataset.selected = "node";
  }

  function splitForm(body, label) {
    const note = h("input", { type: "text", placeholder: "why (kept with the split)", "aria-label": "note" });
    const status = h("div.status");
    const button = h("button.danger", { type: "button" }, label);
    button.addEventListener("click", async () => {
      if (!confirm("Split this profile? The split holds through every rebuild; it can be undone only by an administrator.")) return;
      try {
        const result = await post(`/api/v1/profiles/${encodeURIComponent(profile.profile_id)}/identity/split`, { ...body, note: note.value || null });
        const parts = Object.entries(result.profiles);
        replace(status, notice(h("span", "Split. The identifiers now belong to: ", parts.map(([pid, ids]) => h("span", h("a", { href: `/profiles/${encodeURIComponent(pid)}`, "data-link": true }, pid), ` (${ids.length}) `))), "ok"));
      } catch (error) {
        replace(status, notice(error.message));
      }
    });
    return h("div.split", h("h4", "Split"), note, button, status);
  }
}

// ECharts puts tooltip text in as HTML: identifiers come from the outside world, so escape them.
function edgeLabel(e) {
  return `${escapeHtml(key(e.a.type, e.a.value))} — ${escapeHtml(key(e.b.type, e.b.value))}<br>${e.linking ? "joins" : "refused"} (${escapeHtml(e.rule)})`;
}
