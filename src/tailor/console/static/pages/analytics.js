// Analytics: funnel, paths (Sankey), retention heat map, attribution across models, return on
// spend with the budget suggestion and its reasoning, engagement and the lifecycle flow. Results
// come from the console's cache of /api/v1/analytics (same parameters and answers), which says
// when each was computed and refreshes it in the background when events arrive.

import { get } from "../lib/api.js";
import { h, num, pct, money, replace, section, table, notice, ago } from "../lib/dom.js";
import { chart, sankey } from "../lib/charts.js";
import { field, input, select } from "../lib/forms.js";

const FUNNEL = "Product Viewed,Product Added,Checkout Started,Order Completed";
const MODELS = ["first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley"];

const analysis = (name, query, signal) => get(`/api/v1/console/analytics/${name}`, query, { signal });

function freshness(envelope) {
  const since = envelope.events_since ? ` · ${num(envelope.events_since)} events since` : "";
  return h("p.freshness.muted", `computed ${ago(envelope.computed_at)} in ${envelope.seconds.toFixed(1)} s${since}${envelope.refreshing ? " · refreshing" : ""}`);
}

export default async function render(root, ctx) {
  const s = ctx.signal;
  const hosts = {
    funnel: h("div", { id: "funnel" }),
    paths: h("div", { id: "paths" }),
    retention: h("div", { id: "retention" }),
    attribution: h("div", { id: "attribution" }),
    roas: h("div", { id: "roas" }),
    engagement: h("div", { id: "engagement" }),
    lifecycle: h("div", { id: "lifecycle" }),
  };
  root.append(
    h("h1", "Analytics"),
    section("Funnel", funnelForm(hosts.funnel, ctx), hosts.funnel),
    section("Paths", hosts.paths),
    section("Retention", hosts.retention),
    section("Attribution across models", hosts.attribution),
    section("Return on spend and budget", hosts.roas),
    h("div.grid2", section("Most engaged people", hosts.engagement), section("Lifecycle flow", hosts.lifecycle)),
  );
  const guard = (host, work) => work().catch((error) => {
    if (error.name !== "AbortError") replace(host, notice(error.message));
  });
  await Promise.all([
    guard(hosts.funnel, () => drawFunnel(hosts.funnel, FUNNEL, 72, s)),
    guard(hosts.paths, () => drawPaths(hosts.paths, s)),
    guard(hosts.retention, () => drawRetention(hosts.retention, s)),
    guard(hosts.attribution, () => drawAttribution(hosts.attribution, s)),
    guard(hosts.roas, () => drawRoas(hosts.roas, s)),
    guard(hosts.engagement, () => drawEngagement(hosts.engagement, s)),
    guard(hosts.lifecycle, () => drawLifecycle(hosts.lifecycle, s)),
  ]);
}

function funnelForm(host, ctx) {
  const steps = input({ value: FUNNEL, size: 60 });
  const hours = input({ value: "72", size: 4 });
  const form = h("form.inline", { novalidate: true }, field("Steps (comma-separated)", steps, { path: "steps" }), field("Window (hours)", hours, { path: "window_hours" }), h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    drawFunnel(host, steps.value, hours.value, ctx.signal).catch((error) => replace(host, notice(error.message)));
  });
  return form;
}

async function drawFunnel(host, steps, hours, signal) {
  const env = await analysis("funnel", { steps, window_hours: hours }, signal);
  const f = env.result;
  const el = h("div.chart", { id: "chart-funnel" });
  replace(
    host,
    el,
    table(
      [
        { label: "Step", cell: (x) => x.name },
        { label: "People", numeric: true, cell: (x) => num(x.people) },
        { label: "Of all", numeric: true, cell: (x) => pct(x.conversion) },
        { label: "From previous", numeric: true, cell: (x) => pct(x.from_previous) },
        { label: "Dropped", numeric: true, cell: (x) => num(x.dropped) },
        { label: "Median time", numeric: true, cell: (x) => (x.median_seconds === null ? "—" : `${(x.median_seconds / 3600).toFixed(1)} h`) },
      ],
      f.steps,
    ),
    freshness(env),
  );
  await chart(el, {
    tooltip: { trigger: "axis" },
    grid: { left: 150, right: 24, top: 8, bottom: 24 },
    xAxis: { type: "value" },
    yAxis: { type: "category", inverse: true, data: f.steps.map((x) => x.name) },
    series: [{ type: "bar", data: f.steps.map((x) => x.people), label: { show: true, position: "right", formatter: (p) => pct(f.steps[p.dataIndex].conversion) } }],
  });
}

async function drawPaths(host, signal) {
  const env = await analysis("paths", { kind: "channel", steps: 4 }, signal);
  const el = h("div.chart.tall", { id: "chart-paths" });
  replace(
    host,
    el,
    table([{ label: "Path", cell: (p) => p.steps.join(" → ") }, { label: "Journeys", numeric: true, cell: (p) => num(p.journeys) }], env.result.paths.slice(0, 8)),
    freshness(env),
  );
  await chart(el, sankey(env.result.links));
}

async function drawRetention(host, signal) {
  const env = await analysis("retention", { period: "week", cohort_by: "first_seen", activity: "any" }, signal);
  const cohorts = env.result.cohorts;
  const periods = Math.max(0, ...cohorts.map((c) => c.active.length));
  const data = [];
  cohorts.forEach((c, y) => c.active.forEach((n, x) => data.push([x, y, c.size ? Math.round((1000 * n) / c.size) / 10 : 0, n])));
  const el = h("div.chart.tall", { id: "chart-retention" });
  replace(host, el, freshness(env));
  await chart(el, {
    tooltip: { formatter: (p) => `${cohorts[p.data[1]].start}, week ${p.data[0]}: ${p.data[2]}% (${num(p.data[3])} people)` },
    grid: { left: 120, right: 24, top: 8, bottom: 60 },
    xAxis: { type: "category", data: [...Array(periods).keys()].map((i) => `week ${i}`) },
    yAxis: { type: "category", inverse: true, data: cohorts.map((c) => `${c.start} (${num(c.size)})`) },
    visualMap: { min: 0, max: 100, calculable: true, orient: "horizontal", left: "center", bottom: 0, inRange: { color: ["#f5f8fc", "#2f6db5"] } },
    series: [{ type: "heatmap", data, label: { show: cohorts.length <= 14, formatter: (p) => `${p.data[2]}` } }],
  });
}

async function drawAttribution(host, signal) {
  const env = await analysis("attribution", { level: "channel" }, signal);
  const models = MODELS.filter((m) => env.result.models[m]);
  const channels = [...new Set(models.flatMap((m) => Object.keys(env.result.models[m])))].sort();
  const el = h("div.chart.tall", { id: "chart-attribution" });
  const metric = select([["conversions", "conversions"], ["value", "revenue"]], { value: "conversions", "aria-label": "measure" });
  const draw = () =>
    chart(el, {
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 56, right: 16, top: 40, bottom: 64 },
      xAxis: { type: "category", data: channels, axisLabel: { rotate: 30 } },
      yAxis: { type: "value" },
      series: models.map((m) => ({ name: m, type: "bar", data: channels.map((c) => Math.round((env.result.models[m][c]?.[metric.value] || 0) * 100) / 100) })),
    });
  metric.addEventListener("change", draw);
  replace(
    host,
    h("div.toolbar", h("label", "Credit by ", metric), h("span.muted", ` ${num(env.result.paths)} journeys · ${num(Math.round(env.result.conversions))} conversions · Markov conversion probability ${pct(env.result.markov.conversion_probability)}`)),
    el,
    freshness(env),
  );
  await draw();
}

async function drawRoas(host, signal) {
  const model = select(MODELS, { value: "markov", "aria-label": "model" });
  const body = h("div");
  async function draw() {
    const [returns, budget] = await Promise.all([analysis("roas", { level: "channel" }, signal), analysis("budget", { model: model.value }, signal)]);
    const rows = Object.entries(returns.result[model.value] || {});
    const el = h("div.chart", { id: "chart-budget" });
    const b = budget.result;
    replace(
      body,
      table(
        [
          { label: "Channel", cell: ([c]) => c },
          { label: "Spend", numeric: true, cell: ([, r]) => money(r.spend) },
          { label: "Value", numeric: true, cell: ([, r]) => money(r.value) },
          { label: "ROAS", numeric: true, cell: ([, r]) => (r.roas === null ? "—" : r.roas.toFixed(2)) },
          { label: "ROI", numeric: true, cell: ([, r]) => (r.roi === null ? "—" : pct(r.roi)) },
        ],
        rows,
        { empty: "No spend imported: POST a spend CSV to /api/v1/analytics/spend.", className: "roas" },
      ),
      b.channels.length ? el : null,
      h("h3", `Budget suggestion (${b.model}): expected gain ${money(b.expected_gain)}`),
      h("ul.reasoning", { id: "budget-reasoning" }, b.reasoning.map((r) => h("li", r))),
      freshness(budget),
    );
    if (b.channels.length) {
      await chart(el, {
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 64, right: 16, top: 32, bottom: 40 },
        xAxis: { type: "category", data: b.channels.map((c) => c.channel) },
        yAxis: { type: "value", name: "spend" },
        series: [
          { name: "spend now", type: "bar", data: b.channels.map((c) => Math.round(c.spend)) },
          { name: "suggested", type: "bar", data: b.channels.map((c) => Math.round(c.suggested)) },
        ],
      });
    }
  }
  model.addEventListener("change", () => draw().catch((error) => replace(body, notice(error.message))));
  replace(host, h("div.toolbar", h("label", "Model ", model)), body);
  await draw();
}

async function drawEngagement(host, signal) {
  const env = await analysis("engagement", { limit: 10 }, signal);
  replace(
    host,
    table(
      [
        { label: "Person", cell: (p) => h("a", { href: `/profiles/${encodeURIComponent(p.person)}`, "data-link": true }, p.person) },
        { label: "Score", numeric: true, cell: (p) => p.score.toFixed(1) },
        { label: "Percentile", numeric: true, cell: (p) => pct(p.percentile, 0) },
        { label: "Stage", cell: (p) => p.stage },
        { label: "Interactions", numeric: true, cell: (p) => num(p.interactions) },
      ],
      env.result,
      { className: "engagement" },
    ),
    freshness(env),
  );
}

async function drawLifecycle(host, signal) {
  const env = await analysis("lifecycle", null, signal);
  const flows = env.result.flows || [];
  const months = [...new Set(flows.map((f) => f.month))].sort().slice(-3);
  // The last three months' moves as one Sankey: stage@month -> stage@next month.
  const links = [];
  for (const f of flows.filter((x) => months.includes(x.month))) {
    const [y, m] = f.month.split("-").map(Number);
    const prev = m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, "0")}`;
    links.push({ source: `${f.source} ${prev}`, target: `${f.target} ${f.month}`, value: f.people });
  }
  const el = h("div.chart.tall", { id: "chart-lifecycle" });
  const counts = Object.entries(env.result.months || {}).slice(-1)[0];
  replace(host, el, counts ? h("p.muted", `${counts[0]}: ${Object.entries(counts[1]).map(([s, n]) => `${s} ${num(n)}`).join(" · ")}`) : null, freshness(env));
  await chart(el, sankey(links, { nodeAlign: "left" }));
}
