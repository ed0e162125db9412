// The segment builder: a visual condition tree, a live count preview, save, edit, delete, and the
// members of a saved segment. Errors (the page's own checks and the server's problems[].path) are
// shown next to their fields; nothing typed is ever cleared by an error.

import { get, post, put, del } from "../lib/api.js";
import { h, num, replace, section, table, link, when, notice } from "../lib/dom.js";
import { field, input, showProblems, clearProblems } from "../lib/forms.js";
import { blank, fromDefinition, toDefinition, check, editor, datalists } from "../lib/conditions.js";

const PREVIEW_DELAY_MS = 600;
const NAME = /^[a-z][a-z0-9_]{0,62}$/;

export default async function render(root, ctx) {
  const existing = ctx.params.name || null;
  const membersPage = (offset) =>
    get(`/api/v1/segments/${encodeURIComponent(existing)}/members`, { limit: 50, offset }, { signal: ctx.signal });
  // The members' first page is asked for with the rest, not after them: the page waits for one
  // round trip, the slowest of three.
  const [vocab, saved, firstMembers] = await Promise.all([
    get("/api/v1/console/vocabulary", null, { signal: ctx.signal }),
    existing ? get(`/api/v1/segments/${encodeURIComponent(existing)}`, null, { signal: ctx.signal }) : null,
    existing ? membersPage(0) : null,
  ]);
  const state = {
    name: existing || "",
    description: saved ? saved.definition.description || "" : "",
    tree: saved ? fromDefinition(saved.definition.condition) : blank("group"),
  };
  const properties = {};
  let problems = [];

  const name = input({ name: "name", value: state.name, placeholder: "lapsed_furniture_buyers", readonly: existing ? true : null });
  const description = input({ name: "description", value: state.description, placeholder: "what this segment is for" });
  name.addEventListener("input", () => { state.name = name.value; changed(false); });
  description.addEventListener("input", () => { state.description = description.value; changed(false); });
  const treeHost = h("div.tree", { id: "condition-tree" });
  const jsonView = h("pre.json", { id: "definition-json" });
  const previewHost = h("div.preview", { id: "preview" }, h("p.muted", "The count appears here as you build."));
  const status = h("div.status", { id: "save-status" });
  const saveButton = h("button.primary", { type: "submit" }, existing ? "Save changes" : "Save segment");
  const deleteButton = existing ? h("button.danger", { type: "button" }, "Delete") : null;
  const lists = h("div");
  const form = h(
    "form.builder",
    { novalidate: true },
    h("div.row", field("Name", name, { path: "name", hint: "lower case letters, digits and _" }), field("Description", description, { path: "description" })),
    h("h3", "People who match"),
    treeHost,
    h("div.toolbar", saveButton, " ", deleteButton, status),
    lists,
  );
  root.append(
    h("div.page-head", h("h1", existing ? `Segment ${existing}` : "New segment"), link("/segments", "All segments")),
    h("div.builder-layout", h("div", form), h("aside", section("Live count", previewHost), section("Definition (JSON)", jsonView))),
  );
  const membersHost = h("div", { id: "members" });
  if (existing) root.append(section("Members", membersHost));

  // Checks across definitions name the segment first ("lapsed.condition.all[0].computed").
  function ours(found) {
    const prefix = `${state.name.trim() || "preview"}.`;
    return found.map((p) => (p.path && p.path.startsWith(prefix) ? { ...p, path: p.path.slice(prefix.length) } : p));
  }

  function definition() {
    return { name: state.name.trim(), ...(state.description.trim() ? { description: state.description.trim() } : {}), condition: toDefinition(state.tree) };
  }

  function localProblems() {
    const found = [];
    if (!NAME.test(state.name.trim())) found.push({ path: "name", message: "A name starts with a lower-case letter; then lower-case letters, digits or _ (up to 63)." });
    return check(state.tree, "condition", found);
  }

  function drawTree() {
    replace(treeHost, editor(state.tree, "condition", vocab, changed, null));
    replace(lists, datalists(vocab, properties));
    if (problems.length) showProblems(form, problems);
  }

  let timer = null;
  function changed(structural) {
    if (structural) drawTree();
    jsonView.textContent = JSON.stringify(definition(), null, 2);
    loadProperties();
    clearTimeout(timer);
    timer = setTimeout(preview, PREVIEW_DELAY_MS);
  }

  // Property keys of the events named, for the filters' suggestions.
  function loadProperties() {
    const names = vocab.events.map((e) => e.name);
    const walk = (node) => {
      if (node.kind === "group") node.children.forEach(walk);
      const index = node.kind === "event" ? names.indexOf(node.event) : -1;
      if (index >= 0 && !(index in properties)) {
        properties[index] = [];
        get("/api/v1/console/vocabulary/properties", { event: node.event }, { signal: ctx.signal }).then((answer) => {
          properties[index] = answer.properties;
          replace(lists, datalists(vocab, properties));
        }).catch(() => {});
      }
    };
    walk(state.tree);
  }

  // One preview at a time: a change while one runs asks for another when it is done.
  let running = false;
  let again = false;
  async function preview() {
    const local = localProblems().filter((p) => p.path !== "name");
    if (local.length) {
      previewHost.dataset.state = "invalid";
      replace(previewHost, h("p.muted", "Complete the conditions to see the count."));
      return;
    }
    if (running) { again = true; return; }
    running = true;
    previewHost.dataset.state = "loading";
    try {
      const body = definition();
      if (!NAME.test(body.name)) body.name = "preview";
      const answer = await post("/api/v1/segments/preview", body, { signal: ctx.signal });
      replace(
        previewHost,
        h("div.count", h("span#preview-count", num(answer.members)), h("span.muted", ` of ${num(answer.profiles)} profiles`)),
        h("div.bar", h("div.fill", { style: `width: ${answer.profiles ? (100 * answer.members) / answer.profiles : 0}%` })),
        answer.sample.length ? h("ul.plain.sample", answer.sample.slice(0, 8).map((pid) => h("li", link(`/profiles/${encodeURIComponent(pid)}`, pid)))) : null,
      );
      previewHost.dataset.state = "ready";
      previewHost.dataset.members = String(answer.members);
    } catch (error) {
      if (error.name === "AbortError") return;
      previewHost.dataset.state = "error";
      if (error.problems.length) {
        problems = ours(error.problems);
        showProblems(form, problems, status);
        replace(previewHost, h("p.muted", "Fix the marked fields to see the count."));
      } else replace(previewHost, notice(error.message));
    } finally {
      running = false;
      if (again) { again = false; preview(); }
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    problems = localProblems();
    if (problems.length) return showProblems(form, problems, status);
    clearProblems(form);
    saveButton.disabled = true;
    try {
      const body = definition();
      const answer = existing ? await put(`/api/v1/segments/${encodeURIComponent(existing)}`, body) : await post("/api/v1/segments", body);
      problems = [];
      if (!existing) return ctx.navigate(`/segments/${encodeURIComponent(answer.name)}?saved=1`);
      status.append(notice(`Saved: version ${answer.version}, ${num(answer.members)} members.`, "ok"));
      await drawMembers();
    } catch (error) {
      if (error.problems.length) {
        problems = ours(error.problems);
        showProblems(form, problems, status);
      } else status.append(notice(error.message));
    } finally {
      saveButton.disabled = false;
    }
  });

  if (deleteButton) {
    deleteButton.addEventListener("click", async () => {
      if (!confirm(`Delete the segment ${existing}? Its members leave it now.`)) return;
      try {
        await del(`/api/v1/segments/${encodeURIComponent(existing)}`);
        ctx.navigate("/segments");
      } catch (error) {
        status.replaceChildren(notice(error.message));
      }
    });
  }

  async function drawMembers(offset = 0, fetched = null) {
    const page = fetched || (await membersPage(offset));
    const next = offset + page.members.length < page.total ? h("button", { type: "button", onclick: () => drawMembers(offset + 50) }, "Next 50") : null;
    const prev = offset > 0 ? h("button", { type: "button", onclick: () => drawMembers(Math.max(0, offset - 50)) }, "Previous 50") : null;
    replace(
      membersHost,
      h("p", h("strong#members-total", num(page.total)), " members", page.total ? ` · showing ${offset + 1}–${offset + page.members.length}` : "", " · ", h("a", { href: `/api/v1/segments/${encodeURIComponent(existing)}/members?format=csv`, download: `${existing}.csv` }, "download CSV")),
      table(
        [
          { label: "Profile", cell: (m) => link(`/profiles/${encodeURIComponent(m.profile_id)}`, m.profile_id) },
          { label: "Email", cell: (m) => m.email || "—" },
          { label: "Phone", cell: (m) => m.phone || "—" },
          { label: "User id", cell: (m) => m.user_id || "—" },
          { label: "Since", cell: (m) => when(m.since) },
        ],
        page.members,
        { empty: "No one is in this segment now.", className: "members" },
      ),
      h("div.toolbar", prev, " ", next),
    );
  }

  drawTree();
  changed(false);
  if (ctx.query.get("saved")) status.append(notice("Saved.", "ok"));
  if (existing) await drawMembers(0, firstMembers);
  clearTimeout(timer);
  if (existing) {
    // A saved segment is kept up to date as behaviour changes: its count is its members' now. The
    // definition is evaluated afresh (a whole-base query, seconds at 1M profiles) only once it is
    // edited, not on every visit.
    replace(
      previewHost,
      h("div.count", h("span#preview-count", num(firstMembers.total)), h("span.muted", " members now; edit the conditions to preview a change")),
    );
    previewHost.dataset.state = "ready";
    previewHost.dataset.members = String(firstMembers.total);
    return;
  }
  // The count may take a while on a large base: the page is usable before it arrives.
  preview();
}
