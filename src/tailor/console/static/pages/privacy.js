// Privacy: find a person, see their consent and its history, export everything held about them,
// and erase them (after typing their identifier again to confirm).

import { get, post } from "../lib/api.js";
import { h, num, replace, section, table, when, notice } from "../lib/dom.js";
import { field, input, showProblems, clearProblems } from "../lib/forms.js";
import { searchBox } from "../lib/search.js";

export default async function render(root, ctx) {
  const personHost = h("div", { id: "privacy-person" });
  const box = searchBox({ signal: ctx.signal, onPick: (hit) => showPerson(personHost, hit, ctx) });
  root.append(h("h1", "Privacy"), section("Find a person", box.element), personHost, section("Erasures", await erasures(ctx)));
  const q = ctx.query.get("q");
  if (q) {
    box.input.value = q;
    await box.run();
  }
}

async function erasures(ctx) {
  const answer = await get("/api/v1/privacy/erasures", null, { signal: ctx.signal });
  const rows = answer.erasures || answer || [];
  return table(
    [
      { label: "Erasure", cell: (e) => h("code", e.id || e.erasure_id || "") },
      { label: "When", cell: (e) => when(e.erased_at || e.at || e.created_at) },
      { label: "By", cell: (e) => e.actor || "—" },
      { label: "Rows deleted", numeric: true, cell: (e) => num(Object.values(e.deleted || e.rows || {}).reduce((a, b) => a + b, 0)) },
    ],
    Array.isArray(rows) ? rows : [],
    { empty: "No one has been erased." },
  );
}

async function showPerson(host, hit, ctx) {
  const identifier = `profile:${hit.profile_id}`;
  const consent = await get("/api/v1/consents", { identifier }, { signal: ctx.signal });
  const exportHost = h("div", { id: "export-result" });
  const eraseHost = h("div", { id: "erase" });
  replace(
    host,
    section(
      `${hit.name || hit.email || hit.profile_id}`,
      h("p", h("code", hit.profile_id), hit.email ? ` · ${hit.email}` : "", " · ", h("a", { href: `/profiles/${encodeURIComponent(hit.profile_id)}`, "data-link": true }, "profile")),
      h("h3", "Consent now"),
      table(
        [
          { label: "Purpose", cell: (c) => c.purpose },
          { label: "Channel", cell: (c) => c.channel },
          { label: "Status", cell: (c) => h(`span.badge.${c.status === "granted" ? "ok" : "bad"}`, c.status) },
          { label: "Basis", cell: (c) => c.legal_basis || "—" },
          { label: "Where", cell: (c) => c.origin || c.source_id || "—" },
          { label: "When", cell: (c) => when(c.recorded_at) },
        ],
        consent.consent || [],
        { empty: "No consent statements." },
      ),
      h("h3", "Consent history"),
      h(
        "div",
        { id: "consent-history" },
        table(
          [
            { label: "When", cell: (c) => when(c.recorded_at || c.timestamp) },
            { label: "Purpose", cell: (c) => c.purpose },
            { label: "Channel", cell: (c) => c.channel },
            { label: "Status", cell: (c) => c.status },
            { label: "Identifier", cell: (c) => (c.type && c.value ? `${c.type}:${c.value}` : c.identifier || "—") },
            { label: "Proof", cell: (c) => h("code", c.message_id || (c.seq !== undefined ? `seq ${c.seq}` : "—")) },
          ],
          (consent.history || []).slice().reverse(),
          { empty: "No history." },
        ),
      ),
      h("div.toolbar", exportButton(identifier, hit, exportHost)),
      exportHost,
      eraseForm(hit, eraseHost),
      eraseHost,
    ),
  );
}

function exportButton(identifier, hit, host) {
  const button = h("button", { type: "button", id: "export-button" }, "Export everything held (JSON)");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const text = await post("/api/v1/privacy/export", { identifier, format: "json" }, { text: true });
      const doc = JSON.parse(text);
      const counts = Object.entries(doc.tables || doc).filter(([, v]) => Array.isArray(v)).map(([k, v]) => [k, v.length]);
      const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      replace(
        host,
        notice(h("span", `Export ready: ${num(counts.reduce((a, [, n]) => a + n, 0))} records. `, h("a", { href: url, download: `export-${hit.profile_id}.json`, id: "export-download" }, "Download")), "ok"),
        table([{ label: "Table", cell: ([k]) => k }, { label: "Rows", numeric: true, cell: ([, n]) => num(n) }], counts.filter(([, n]) => n > 0)),
      );
    } catch (error) {
      replace(host, notice(error.message));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

function eraseForm(hit, host) {
  const expected = hit.email ? `email:${hit.email}` : `profile:${hit.profile_id}`;
  const confirmInput = input({ name: "confirm", placeholder: expected });
  const form = h(
    "form.danger-zone",
    { novalidate: true },
    h("h3", "Erase this person"),
    h("p", "Deletes their events, profile, identities, segment memberships and consent from every table and keeps only a hashed tombstone. This cannot be undone."),
    field(`Type ${expected} to confirm`, confirmInput, { path: "identifier" }),
    h("button.danger", { type: "submit" }, "Erase"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    if (confirmInput.value.trim() !== expected) {
      return showProblems(form, [{ path: "identifier", message: `Type exactly ${expected} to confirm.` }]);
    }
    try {
      const result = await post("/api/v1/privacy/erase", { identifier: expected });
      replace(host, notice(`Erased (${result.erasure_id || result.id || "done"}).`, "ok"));
      form.remove();
    } catch (error) {
      showProblems(form, [{ path: "identifier", message: error.message }]);
    }
  });
  return form;
}
