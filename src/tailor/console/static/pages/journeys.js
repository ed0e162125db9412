// Journeys: every journey with the people on it; one journey's steps and branches drawn as a graph
// with the people through each branch and at each step now, and its results with lift.

import { get } from "../lib/api.js";
import { h, num, table, link, when, section, escapeHtml, notice } from "../lib/dom.js";
import { chart, PALETTE } from "../lib/charts.js";

export const KINDS = ["wait", "wait_for_event", "condition", "split", "send", "update_trait", "webhook", "exit"];
const pct = (x) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}%`);
const money = (x) => (x === null || x === undefined ? "—" : x.toLocaleString("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));

export function kindOf(step) {
  return KINDS.find((k) => k in step) || "?";
}

function entryText(entry) {
  if (!entry) return "";
  if (entry.event) return `event ${typeof entry.event === "string" ? entry.event : entry.event.name}`;
  if (entry.segment) return `segment ${typeof entry.segment === "string" ? entry.segment : `${entry.segment.name} (${entry.segment.on || "enter"})`}`;
  if (entry.schedule) return `broadcast to ${entry.schedule.segment}${entry.schedule.every ? ` every ${entry.schedule.every}` : ""}`;
  return "";
}

// Each step's branches as [label, target, outcomes counted on that branch], as the runner reads them.
export function branches(steps) {
  return steps.map((step, i) => {
    const kind = kindOf(step);
    const body = step[kind] || {};
    const next = "next" in step ? step.next : steps[i + 1] ? steps[i + 1].id : null;
    if (kind === "exit") return [];
    if (kind === "condition") return [["yes", "then" in body ? body.then : next, ["yes"]], ["no", body.else ?? null, ["no"]]];
    if (kind === "wait_for_event") return [["event", next, ["event"]], ["timed out", body.on_timeout ?? null, ["timed out"]]];
    if (kind === "split") return (body.variants || []).map((v) => [`variant ${v.name}`, "next" in v ? v.next : next, [`variant ${v.name}`]]);
    return [["", next, null]];
  });
}

function through(counts, outcomes) {
  if (!counts) return 0;
  return Object.entries(counts)
    .filter(([k]) => k !== "now" && (outcomes === null || outcomes.includes(k)))
    .reduce((a, [, n]) => a + n, 0);
}

export async function drawGraph(host, journey, counts, entered) {
  const steps = journey.definition.steps || [];
  const edges = branches(steps);
  const depth = new Map([["__entry", 0]]);
  const order = ["__entry"];
  const queue = steps.length ? [[steps[0].id, 1]] : [];
  while (queue.length) {
    const [id, d] = queue.shift();
    if (depth.has(id)) continue;
    depth.set(id, d);
    order.push(id);
    const i = steps.findIndex((s) => s.id === id);
    for (const [, target] of i >= 0 ? edges[i] : []) queue.push([target === null ? "__end" : target, d + 1]);
  }
  for (const s of steps) if (!depth.has(s.id)) depth.set(s.id, 1);
  const rows = new Map();
  const position = new Map();
  for (const id of [...order, ...steps.map((s) => s.id).filter((id) => !order.includes(id))]) {
    const d = depth.get(id);
    const row = rows.get(d) || 0;
    rows.set(d, row + 1);
    position.set(id, [d * 200, row * 100]);
  }
  const node = (id, name, category, label) => ({ id, name, x: position.get(id)[0], y: position.get(id)[1], category, value: label });
  const entry = entryText(journey.definition.entry);
  const data = [node("__entry", "entry", 0, `${entry.length > 24 ? entry.slice(0, 23) + "…" : entry}\nentered ${num(entered)}`)];
  for (const s of steps) {
    const c = counts[s.id] || {};
    const kind = kindOf(s);
    data.push(node(s.id, s.id, Math.max(1, KINDS.indexOf(kind) + 1), `${kind}\nthrough ${num(through(c, null))} · now ${num(c.now || 0)}`));
  }
  if (position.has("__end")) data.push(node("__end", "end", KINDS.length + 1, ""));
  const links = [];
  if (steps.length) links.push({ source: "__entry", target: steps[0].id, label: { show: true, formatter: num(entered) } });
  steps.forEach((s, i) => {
    for (const [label, target, outcomes] of edges[i]) {
      const n = through(counts[s.id], outcomes);
      links.push({ source: s.id, target: target === null ? "__end" : target, value: n, label: { show: true, formatter: `${label}${label ? ": " : ""}${num(n)}` } });
    }
  });
  host.dataset.nodes = String(data.length);
  host.dataset.edges = String(links.length);
  host.dataset.entered = String(entered);
  host.dataset.through = JSON.stringify(Object.fromEntries(steps.map((s) => [s.id, through(counts[s.id], null)])));
  await chart(host, {
    tooltip: { formatter: (p) => escapeHtml(p.dataType === "edge" ? `${p.data.source} → ${p.data.target}: ${num(p.data.value)}` : `${p.data.name}: ${p.data.value}`) },
    series: [
      {
        type: "graph",
        layout: "none",
        roam: true,
        symbol: "roundRect",
        symbolSize: [150, 58],
        edgeSymbol: ["none", "arrow"],
        categories: ["entry", ...KINDS, "end"].map((name, i) => ({ name, itemStyle: { color: PALETTE[i % PALETTE.length] } })),
        label: { show: true, formatter: (p) => `{b|${p.data.name}}\n${p.data.value}`, fontSize: 10, lineHeight: 13, color: "#fff", rich: { b: { fontWeight: "bold", fontSize: 11, lineHeight: 14, color: "#fff" } } },
        edgeLabel: { fontSize: 10 },
        lineStyle: { width: 1.5, curveness: 0.15, color: "#5f6b7a" },
        data,
        links,
      },
    ],
  });
}

function resultTables(results) {
  const steps = table(
    [
      { label: "Step", cell: (s) => s.step },
      { label: "Variant", cell: (s) => s.variant || "—" },
      { label: "Sent", numeric: true, cell: (s) => num(s.sent) },
      { label: "Delivered", numeric: true, cell: (s) => num(s.delivered) },
      { label: "Unique opens", numeric: true, cell: (s) => num(s.unique_opens) },
      { label: "Open rate", numeric: true, cell: (s) => pct(s.open_rate) },
      { label: "CTR", numeric: true, cell: (s) => pct(s.click_rate) },
      { label: "Click-to-open", numeric: true, cell: (s) => pct(s.click_to_open) },
      { label: "Conversions", numeric: true, cell: (s) => num(s.conversions) },
      { label: "Conv. rate", numeric: true, cell: (s) => pct(s.conversion_rate) },
      { label: "Revenue", numeric: true, cell: (s) => money(s.revenue) },
      { label: "Per 1,000", numeric: true, cell: (s) => money(s.revenue_per_1000) },
    ],
    results.steps,
    { empty: "Nothing sent yet.", className: "journey-steps" },
  );
  const groups = table(
    [
      { label: "Group", cell: (g) => g.group },
      { label: "Entered", numeric: true, cell: (g) => num(g.entered) },
      { label: "Converted", numeric: true, cell: (g) => num(g.conversions) },
      { label: "Conv. rate", numeric: true, cell: (g) => pct(g.conversion_rate) },
      { label: "Revenue", numeric: true, cell: (g) => money(g.revenue) },
    ],
    results.groups,
    { empty: "Nobody entered yet." },
  );
  const lift = table(
    [
      { label: "Against", cell: (x) => x.baseline },
      { label: "Treatment", numeric: true, cell: (x) => pct(x.treatment_rate) },
      { label: "Baseline", numeric: true, cell: (x) => pct(x.baseline_rate) },
      { label: "Lift", numeric: true, cell: (x) => (x.lift === null ? "—" : `${x.lift >= 0 ? "+" : ""}${(100 * x.lift).toFixed(0)}%`) },
      { label: "95% interval (pt)", numeric: true, cell: (x) => `${(100 * x.ci_low).toFixed(1)} to ${(100 * x.ci_high).toFixed(1)}` },
      { label: "p", numeric: true, cell: (x) => (x.p_value === null ? "—" : x.p_value.toFixed(4)) },
      { label: "", cell: (x) => (x.significant ? h("span.badge.ok", "significant") : h("span.muted", "not significant")) },
    ],
    results.lift,
    { empty: "No holdout or control group to compare with.", className: "journey-lift" },
  );
  return [steps, h("h3", "Groups"), groups, h("h3", "Lift over holdout and control"), lift];
}

async function detail(root, ctx) {
  const name = ctx.params.name;
  const q = encodeURIComponent(name);
  const [journey, counts, results] = await Promise.all([
    get(`/api/v1/journeys/${q}`, null, { signal: ctx.signal }),
    get(`/api/v1/journeys/${q}/counts`, null, { signal: ctx.signal }),
    get(`/api/v1/journeys/${q}/results`, null, { signal: ctx.signal }),
  ]);
  const entered = results.groups.reduce((a, g) => a + g.entered, 0);
  const graph = h("div#journey-graph.chart.tall");
  root.append(
    h("div.page-head", h("h1", `Journey ${journey.name}`), h("span", link(`/journeys/${q}/edit`, "Edit"), " · ", link("/journeys", "All journeys"))),
    ctx.query.get("saved") ? notice(`Saved (version ${ctx.query.get("saved")}).`, "ok") : "",
    h("p.muted", [journey.definition.description, `Entry: ${entryText(journey.definition.entry)}.`, `Version ${journey.version}, saved ${when(journey.updated_at)}.`].filter(Boolean).join(" — ")),
    section("Steps and branches (people through each, and on each step now)", graph),
    section(`Results (conversion: ${results.conversion_event || "none"})`, h("div#journey-results", resultTables(results))),
  );
  await drawGraph(graph, journey, counts.steps, entered);
}

export default async function render(root, ctx) {
  if (ctx.params.name) return detail(root, ctx);
  const { journeys } = await get("/api/v1/journeys", null, { signal: ctx.signal });
  const counts = await Promise.all(journeys.map((j) => get(`/api/v1/journeys/${encodeURIComponent(j.name)}/counts`, null, { signal: ctx.signal })));
  const now = Object.fromEntries(counts.map((c) => [c.journey, Object.values(c.steps).reduce((a, s) => a + (s.now || 0), 0)]));
  root.append(
    h("div.page-head", h("h1", "Journeys"), link("/journeys/new", "New journey")),
    h(
      "div#journey-list",
      table(
        [
          { label: "Journey", cell: (j) => link(`/journeys/${encodeURIComponent(j.name)}`, j.name) },
          { label: "Description", cell: (j) => j.definition.description || "" },
          { label: "Entry", cell: (j) => entryText(j.definition.entry) },
          { label: "Steps", numeric: true, cell: (j) => num((j.definition.steps || []).length) },
          { label: "On it now", numeric: true, cell: (j) => num(now[j.name]) },
          { label: "Version", numeric: true, cell: (j) => String(j.version) },
          { label: "Updated", cell: (j) => when(j.updated_at) },
        ],
        journeys,
        { empty: "No journeys yet: create one (New journey), PUT /api/v1/journeys/{name} or tailor journeys apply FILE." },
      ),
    ),
  );
}
