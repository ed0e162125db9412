// Overview: totals as tiles and the last hour per minute as live charts, refreshed every 3 s.

import { get } from "../lib/api.js";
import { h, num, replace, tile, section, notice } from "../lib/dom.js";
import { chart, lineSeries } from "../lib/charts.js";

const REFRESH_MS = 3000;

function timeAxis(minutes) {
  return minutes.map((m) => new Date(m).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" }));
}

export default async function render(root, ctx) {
  const tiles = h("div.tiles", { id: "overview-tiles" });
  const charts = {
    events: h("div.chart", { id: "chart-events" }),
    quarantine: h("div.chart", { id: "chart-quarantine" }),
    identity: h("div.chart", { id: "chart-identity" }),
    lag: h("div.chart", { id: "chart-lag" }),
    sends: h("div.chart", { id: "chart-sends" }),
  };
  const status = h("div.status");
  root.append(
    h("h1", "Overview"),
    status,
    tiles,
    h(
      "div.grid2",
      section("Events per minute", charts.events),
      section("Quarantined per minute", charts.quarantine),
      section("Merges and splits per minute", charts.identity),
      section("Processor lag (events not yet processed)", charts.lag),
      section("Messages sent per minute (email, SMS, webhooks)", charts.sends),
    ),
  );
  const lagSeen = new Map(); // samples kept across polls, in case the server restarts

  async function refresh() {
    let o;
    try {
      o = await get("/api/v1/console/overview", { minutes: 60 }, { signal: ctx.signal });
    } catch (error) {
      if (error.name !== "AbortError") replace(status, notice(`Could not refresh: ${error.message}`));
      return;
    }
    replace(status);
    replace(
      tiles,
      tile("Events stored", num(o.events_total), { id: "events" }),
      tile("Profiles", num(o.profiles), { id: "profiles", note: `${num(o.identifiers)} identifiers` }),
      tile("Merges", num(o.merges), { id: "merges" }),
      tile("Splits", num(o.splits), { id: "splits" }),
      tile("Quarantine open", num(o.quarantine_open), { id: "quarantine", note: `${num(o.quarantined_total)} since start` }),
      tile("Processor lag", num(o.processor_lag), { id: "lag", note: o.processor_error ? `error: ${o.processor_error}` : "events" }),
      tile("Segments", num(o.segments), { id: "segments" }),
      tile("Sends", num(o.sends), { id: "sends", note: `${num(o.series.sends.reduce((a, n) => a + n, 0))} in the last hour` }),
    );
    const axis = timeAxis(o.series.minutes);
    const grid = { left: 48, right: 16, top: 24, bottom: 28 };
    await chart(charts.events, {
      grid, tooltip: { trigger: "axis" }, xAxis: { type: "category", data: axis }, yAxis: { type: "value", minInterval: 1 },
      series: [{ name: "events", type: "bar", data: o.series.events }],
    });
    await chart(charts.quarantine, {
      grid, tooltip: { trigger: "axis" }, xAxis: { type: "category", data: axis }, yAxis: { type: "value", minInterval: 1 },
      series: [{ name: "quarantined", type: "bar", data: o.series.quarantined, itemStyle: { color: "#c4473a" } }],
    });
    await chart(charts.identity, {
      grid, tooltip: { trigger: "axis" }, legend: { top: 0 }, xAxis: { type: "category", data: axis }, yAxis: { type: "value", minInterval: 1 },
      series: [lineSeries("merges", o.series.merges), lineSeries("splits", o.series.splits)],
    });
    await chart(charts.sends, {
      grid, tooltip: { trigger: "axis" }, xAxis: { type: "category", data: axis }, yAxis: { type: "value", minInterval: 1 },
      series: [{ name: "sent", type: "bar", data: o.series.sends, itemStyle: { color: "#2f7d5b" } }],
    });
    for (const [t, lag] of o.lag) lagSeen.set(t, lag);
    lagSeen.set(Date.now() / 1000, o.processor_lag);
    const samples = [...lagSeen.entries()].sort((a, b) => a[0] - b[0]).slice(-600);
    await chart(charts.lag, {
      grid, tooltip: { trigger: "axis" }, xAxis: { type: "time" }, yAxis: { type: "value", minInterval: 1 },
      series: [lineSeries("lag", samples.map(([t, n]) => [t * 1000, n]), { areaStyle: { opacity: 0.15 } })],
    });
    root.dataset.updated = String(Date.now());
  }

  await refresh();
  ctx.every(refresh, REFRESH_MS);
}
