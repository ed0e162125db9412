// Sources: write keys (create a source, rotate its key), a live event debugger, and the quarantine
// with replay of a corrected message.

import { get, post } from "../lib/api.js";
import { h, num, replace, section, table, when, notice, display } from "../lib/dom.js";
import { field, input, select, showProblems, clearProblems } from "../lib/forms.js";

const LIVE_MS = 2000;
const KEEP = 100;

export default async function render(root, ctx) {
  const sourcesHost = h("div", { id: "sources" });
  const liveHost = h("div.live", { id: "live-events" });
  const quarantineHost = h("div", { id: "quarantine" });
  const detailHost = h("div", { id: "quarantine-detail" });
  root.append(
    h("h1", "Sources"),
    section("Sources and write keys", sourcesHost, newSourceForm(() => drawSources())),
    section("Live event debugger", h("p.hint", "The latest events as they arrive, and messages refused with each field's error."), liveHost),
    section("Quarantine", quarantineHost, detailHost),
  );

  async function drawSources() {
    const { sources } = await get("/api/v1/sources", null, { signal: ctx.signal });
    replace(
      sourcesHost,
      table(
        [
          { label: "Source", cell: (s) => h("span", h("strong", s.name), " ", h("code.muted", s.id)) },
          { label: "Live write keys", cell: (s) => (s.key_prefixes.length ? s.key_prefixes.map((p) => h("code.key", `${p}…`)) : h("span.muted", "none (revoked)")) },
          { label: "Events", numeric: true, cell: (s) => num(s.events) },
          { label: "Last day", cell: (s) => s.last_day || "—" },
          { label: "", cell: (s) => h("button", { type: "button", onclick: () => rotate(s.name) }, "Rotate key") },
        ],
        sources,
      ),
    );
  }

  async function rotate(name) {
    if (!confirm(`Issue a new write key for ${name}? The current keys keep working for 24 hours.`)) return;
    try {
      const answer = await post(`/api/v1/sources/${encodeURIComponent(name)}/rotate`, { grace_s: 86400 });
      sourcesHost.prepend(shownOnce(name, answer.write_key));
      await drawSources();
    } catch (error) {
      sourcesHost.prepend(notice(error.message));
    }
  }

  // The debugger: polls for what is newer than the last seq and quarantine id seen.
  let afterSeq = null;
  let afterQ = null;
  const rows = [];
  const liveTable = h("table.live-table", h("thead", h("tr", ["", "Received", "Source", "Type", "Event", "Who", "Detail"].map((c) => h("th", c)))));
  const liveBody = h("tbody");
  liveTable.append(liveBody);
  replace(liveHost, liveTable);

  async function poll() {
    let feed;
    try {
      feed = await get("/api/v1/console/live", { after_seq: afterSeq, after_quarantine: afterQ, limit: 50 }, { signal: ctx.signal });
    } catch (error) {
      return;
    }
    const fresh = [
      ...feed.events.map((e) => ({ at: e.received_at, key: `e${e.seq}`, ok: true, e })),
      ...feed.rejections.map((r) => ({ at: r.received_at, key: `q${r.id}`, ok: false, r })),
    ].sort((a, b) => (a.at < b.at ? 1 : -1));
    afterSeq = feed.last_seq;
    afterQ = feed.last_quarantine_id;
    for (const item of fresh.reverse()) {
      rows.unshift(item);
      liveBody.prepend(liveRow(item));
    }
    while (rows.length > KEEP) {
      rows.pop();
      liveBody.lastChild.remove();
    }
    liveHost.dataset.rows = String(rows.length);
  }

  function liveRow(item) {
    if (item.ok) {
      const e = item.e;
      const detail = h("details", h("summary", `seq ${e.seq}`), h("pre", JSON.stringify(e.payload, null, 2)));
      return h("tr.ok", h("td", h("span.badge.ok", "stored")), h("td", when(e.received_at)), h("td", e.source_id), h("td", e.type), h("td", e.event || "—"), h("td", e.user_id || e.anonymous_id || "—"), h("td", detail));
    }
    const r = item.r;
    const errors = Array.isArray(r.errors) ? r.errors : [];
    const detail = h("div", h("div", r.reason), errors.length ? h("ul.errors", errors.map((x) => h("li", h("code", x.path || x.field || ""), " ", x.message || display(x)))) : null);
    return h("tr.bad", h("td", h("span.badge.bad", "refused")), h("td", when(r.received_at)), h("td", r.source_id), h("td", r.endpoint), h("td", "—"), h("td", "—"), h("td", detail, h("button.link", { type: "button", onclick: () => openEntry(r.id) }, `quarantine #${r.id}`)));
  }

  // The quarantine list and one entry with its payload, editable and replayable.
  const statusFilter = select(["open", "replayed", "discarded", "all"], { value: "open", "aria-label": "status" });
  statusFilter.addEventListener("change", () => drawQuarantine());

  async function drawQuarantine() {
    const { quarantine } = await get("/api/v1/quarantine", { status: statusFilter.value, limit: 100 }, { signal: ctx.signal });
    replace(
      quarantineHost,
      h("div.toolbar", h("label", "Show ", statusFilter)),
      table(
        [
          { label: "#", cell: (q) => h("button.link", { type: "button", onclick: () => openEntry(q.id) }, String(q.id)) },
          { label: "Received", cell: (q) => when(q.received_at) },
          { label: "Endpoint", cell: (q) => q.endpoint + (q.batch_index === null ? "" : ` [${q.batch_index}]`) },
          { label: "Reason", cell: (q) => q.reason },
          { label: "Status", cell: (q) => h(`span.badge.${q.status}`, q.status) },
        ],
        quarantine,
        { empty: "No quarantined messages with this status." },
      ),
    );
  }

  async function openEntry(id) {
    const entry = await get(`/api/v1/quarantine/${id}`, null, { signal: ctx.signal });
    let pretty = entry.payload;
    try { pretty = JSON.stringify(JSON.parse(entry.payload), null, 2); } catch { /* kept as received */ }
    const editor = h("textarea.payload", { rows: 12, spellcheck: "false", "data-path": "payload" }, pretty);
    const result = h("div.status");
    const errors = Array.isArray(entry.errors) ? entry.errors : [];
    const replayButton = h("button.primary", { type: "button", disabled: entry.status !== "open" }, "Replay corrected message");
    const discardButton = h("button", { type: "button", disabled: entry.status !== "open" }, "Discard");
    replayButton.addEventListener("click", async () => {
      result.replaceChildren();
      try {
        const answer = await post(`/api/v1/quarantine/${id}/replay`, editor.value);
        result.append(notice(`Replayed: stored as seq ${answer.seqs.join(", ") || "—"} (${answer.duplicates} duplicates).`, "ok"));
        await drawQuarantine();
      } catch (error) {
        const rejected = (error.body.rejected || []).flatMap((r) => r.errors || []);
        replace(result, notice(error.message), rejected.length ? h("ul.errors", rejected.map((x) => h("li", h("code", x.path || ""), " ", x.message || display(x)))) : null);
      }
    });
    discardButton.addEventListener("click", async () => {
      if (!confirm(`Discard quarantine entry #${id}? It is kept, marked discarded.`)) return;
      await post(`/api/v1/quarantine/${id}/discard`);
      await drawQuarantine();
      await openEntry(id);
    });
    replace(
      detailHost,
      h(
        "div.card.inner",
        h("h3", `Quarantine entry #${entry.id} · ${entry.status}`),
        h("p", entry.reason),
        errors.length ? h("ul.errors", errors.map((x) => h("li", h("code", x.path || ""), " ", x.message || display(x)))) : null,
        h("label", { for: "payload-editor" }, "Payload (edit it, then replay)"),
        Object.assign(editor, { id: "payload-editor" }),
        h("div.toolbar", replayButton, " ", discardButton),
        result,
      ),
    );
  }

  await Promise.all([drawSources(), poll(), drawQuarantine()]);
  ctx.every(poll, LIVE_MS);
}

function shownOnce(name, key) {
  return notice(h("span", `New write key for ${name} (shown only now): `, h("code.key", key)), "ok");
}

function newSourceForm(onCreated) {
  const name = input({ name: "name", placeholder: "crm-import" });
  const result = h("div.status");
  const form = h("form.inline", { novalidate: true }, field("New source", name, { path: "name", hint: "letters, digits, '-' or '_'" }), h("button", { type: "submit" }, "Add source"), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    result.replaceChildren();
    const value = name.value.trim();
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
      return showProblems(form, [{ path: "name", message: "A source name is 1-64 letters, digits, '-' or '_'." }]);
    }
    try {
      const created = await post("/api/v1/sources", { name: value });
      result.append(shownOnce(created.name, created.write_key));
      name.value = "";
      await onCreated();
    } catch (error) {
      if (error.problems.length) showProblems(form, error.problems);
      else result.append(notice(error.message));
    }
  });
  return form;
}
