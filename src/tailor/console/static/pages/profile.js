// The single customer view: who the person is, their identity graph with the evidence of each
// link (and a split), every touch across devices and channels, the golden record with provenance
// and history, computed traits, segments and consents.

import { get } from "../lib/api.js";
import { h, num, replace, section, table, when, display, link } from "../lib/dom.js";
import { icon } from "../lib/icons.js";
import { drawIdentityGraph } from "./profile_graph.js";

const PAGE = 50;

export default async function render(root, ctx) {
  const id = ctx.params.id;
  const signal = ctx.signal;
  const [profile, identity, timeline] = await Promise.all([
    get(`/api/v1/profiles/${encodeURIComponent(id)}`, null, { signal }),
    get(`/api/v1/profiles/${encodeURIComponent(id)}/identity`, null, { signal }),
    get(`/api/v1/console/profiles/${encodeURIComponent(id)}/timeline`, { limit: PAGE }, { signal }),
  ]);
  if (profile.profile_id !== id) history.replaceState(null, "", `/profiles/${encodeURIComponent(profile.profile_id)}`);
  const t = profile.traits || {};
  const name = [t.first_name?.value, t.last_name?.value].filter(Boolean).join(" ") || t.name?.value || profile.profile_id;
  const email = t.email?.value || profile.identifiers.find((i) => i.type === "email")?.value;

  root.append(
    h(
      "div.profile-head",
      h("div", h("h1", { id: "profile-name" }, name), h("div.muted", email || "", " · ", h("code", profile.profile_id), profile.aliases.length ? ` · also known as ${profile.aliases.join(", ")}` : "")),
      h(
        "div.tiles.small",
        stat("Events", num(profile.events)),
        stat("First seen", when(profile.first_seen)),
        stat("Last seen", when(profile.last_seen)),
        stat("Identifiers", num(profile.identifiers.length)),
        stat("Devices", num(profile.devices.length)),
      ),
    ),
    h("div.chips", { id: "channels" }, Object.entries(profile.channels).map(([c, n]) => h("span.chip", icon(c, c), ` ${c} `, h("strong", num(n))))),
    h("div.chips", { id: "devices" }, profile.devices.map((d) => h("span.chip", icon(d.kind, d.kind), ` ${d.kind.replace("_", " ")}`, d.model ? ` (${d.model})` : "", h("span.muted", ` ${num(d.events)}`)))),
  );

  const graphHost = h("div.chart.tall", { id: "identity-graph" });
  const evidenceHost = h("div.evidence", { id: "edge-evidence" }, h("p.muted", "Select a link or an identifier in the graph to see its evidence."));
  root.append(section("Identity graph", h("div.graph-layout", graphHost, evidenceHost), h("p.hint", "Solid links join identifiers into this person; dashed ones were refused by a merge rule (shared device, second user id, limit) or cut by a split.")));

  const timelineHost = h("div", { id: "timeline" });
  root.append(section(`Timeline (${num(timeline.total)} touches)`, timelineHost));
  const traitsHost = h("div", { id: "golden" });
  root.append(
    h(
      "div.grid2",
      section("Golden record", traitsHost),
      section("Computed traits", computedTable(profile.computed_traits)),
      section("Segments", segmentsList(profile.segments)),
      section("Consent", consentTable(profile.consents)),
    ),
  );
  drawTraits(traitsHost, profile, signal);
  drawTimeline(timelineHost, timeline, id, signal);
  await drawIdentityGraph(graphHost, evidenceHost, identity, profile, ctx);
}

function stat(label, value) {
  return h("div.tile", h("div.tile-label", label), h("div.tile-value.small", value));
}

function drawTimeline(host, first, id, signal) {
  const list = h("ol.timeline");
  let offset = 0;
  const more = h("button", { type: "button" }, "Older touches");
  function add(page) {
    for (const touch of page.touches) list.append(touchItem(touch));
    offset = page.offset + page.touches.length;
    more.hidden = offset >= page.total;
  }
  more.addEventListener("click", async () => add(await get(`/api/v1/console/profiles/${encodeURIComponent(id)}/timeline`, { offset, limit: PAGE }, { signal })));
  add(first);
  replace(host, first.touches.length ? list : h("p.muted", "No events."), more);
}

function touchItem(touch) {
  const what = touch.event || touch.name || touch.type;
  const props = touch.summary && typeof touch.summary === "object" ? Object.entries(touch.summary).slice(0, 4) : [];
  return h(
    "li.touch",
    { dataset: { channel: touch.channel, seq: touch.seq } },
    h("span.icons", icon(touch.channel, `channel: ${touch.channel}`), touch.device ? icon(touch.device, `device: ${touch.device}`) : null),
    h("span.when", when(touch.at)),
    h("span.what", h("strong", what), h("span.muted", ` ${touch.type} · ${touch.channel}${touch.device ? " · " + touch.device.replace("_", " ") : ""} · ${touch.source_id}`)),
    props.length ? h("span.props", props.map(([k, v]) => h("span.prop", `${k}: ${display(v).slice(0, 60)}`))) : null,
  );
}

function drawTraits(host, profile, signal) {
  const rows = Object.entries(profile.traits || {});
  const history = h("div", { id: "trait-history" });
  replace(
    host,
    table(
      [
        { label: "Trait", cell: ([k]) => k },
        { label: "Value", cell: ([, v]) => display(v.value) },
        { label: "Source", cell: ([, v]) => v.source_id },
        { label: "Policy", cell: ([, v]) => v.policy || "—" },
        { label: "Seen", numeric: true, cell: ([, v]) => num(v.observations) },
        { label: "", cell: ([k]) => h("button.link", { type: "button", onclick: () => showHistory(k) }, "history") },
      ],
      rows,
      { empty: "No traits given yet." },
    ),
    history,
  );
  async function showHistory(trait) {
    const answer = await get(`/api/v1/profiles/${encodeURIComponent(profile.profile_id)}/traits/${encodeURIComponent(trait)}/history`, null, { signal });
    replace(
      history,
      h("h3", `History of ${trait}`),
      table(
        [
          { label: "When", cell: (o) => when(o.at) },
          { label: "Value", cell: (o) => display(o.value) },
          { label: "Source", cell: (o) => o.source_id },
          { label: "Event", cell: (o) => h("code", o.message_id || `seq ${o.seq}`) },
        ],
        answer.history.slice().reverse(),
      ),
    );
  }
}

function computedTable(computed) {
  return table(
    [
      { label: "Trait", cell: ([k]) => k },
      { label: "Value", cell: ([, v]) => display(v) },
    ],
    Object.entries(computed || {}).filter(([, v]) => v !== null),
    { empty: "No computed values." },
  );
}

function segmentsList(segments) {
  if (!segments.length) return h("p.muted", "In no segment.");
  return h("ul.plain", { id: "profile-segments" }, segments.map((s) => h("li", link(`/segments/${encodeURIComponent(s.segment)}`, s.segment), h("span.muted", ` since ${when(s.since)}`))));
}

function consentTable(consents) {
  return table(
    [
      { label: "Purpose", cell: (c) => c.purpose },
      { label: "Channel", cell: (c) => c.channel },
      { label: "Status", cell: (c) => h(`span.badge.${c.status === "granted" ? "ok" : "bad"}`, c.status) },
      { label: "Basis", cell: (c) => c.legal_basis || "—" },
      { label: "Recorded", cell: (c) => when(c.recorded_at) },
    ],
    consents || [],
    { empty: "No consent statements: marketing is refused until granted." },
  );
}

