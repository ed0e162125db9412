// The journey editor: name, description, entry and steps as a form; every other setting (offers,
// conversion, holdout, re-entry, exit events) as JSON; the steps and branches drawn as they are
// edited; saved with PUT /api/v1/journeys/{name}. Every problem, the page's own or the server's,
// is shown next to its field (steps[1].send, entry.event, ...); nothing typed is cleared by one.

import { get, put, del } from "../lib/api.js";
import { h, replace, section, link, notice } from "../lib/dom.js";
import { field, input, select, showProblems, clearProblems } from "../lib/forms.js";
import { KINDS, kindOf, drawGraph } from "./journeys.js";

const NAME = /^[a-z][a-z0-9_]{0,62}$/;
const DRAW_DELAY_MS = 300;
const ENTRY_KINDS = [
  ["event", "an event happens"],
  ["segment", "someone enters a segment"],
  ["schedule", "a broadcast to a segment"],
];
// What a new step of each kind starts with (the step reference in the README has every field).
const STARTERS = {
  wait: { duration: "1d" },
  wait_for_event: { event: "Order Completed", timeout: "3d" },
  condition: { if: { trait: "newsletter", op: "=", value: true } },
  split: { variants: [{ name: "A", weight: 1 }, { name: "B", weight: 1 }] },
  send: { channel: "email", template: "" },
  update_trait: { traits: { journey_stage: "welcomed" } },
  webhook: { url: "https://example.org/hook", template: "" },
  exit: {},
};
const TOP = new Set(["name", "description", "entry", "steps"]);

const pretty = (value) => JSON.stringify(value, null, 2);

function entryState(entry) {
  const kind = ENTRY_KINDS.map(([k]) => k).find((k) => entry && k in entry) || "event";
  const body = entry ? entry[kind] : null;
  // An event or a segment is named by a string or an object's name; a broadcast by its segment.
  const target = kind === "schedule" ? body && body.segment : typeof body === "string" ? body : body && body.name;
  const every = kind === "schedule" ? body && body.every : "";
  return { kind, target: target || "", every: every || "", original: entry || null };
}

function stepState(step) {
  const kind = kindOf(step);
  return {
    id: step.id,
    kind: KINDS.includes(kind) ? kind : "wait",
    body: pretty(step[kind] ?? STARTERS[kind] ?? {}),
    next: "next" in step ? (step.next === null ? "end" : step.next) : "",
  };
}

export default async function render(root, ctx) {
  const existing = ctx.params.name || null;
  const saved = existing ? await get(`/api/v1/journeys/${encodeURIComponent(existing)}`, null, { signal: ctx.signal }) : null;
  const definition0 = saved ? saved.definition : { name: "", entry: { event: "Order Completed" }, steps: [{ id: "first", wait: STARTERS.wait }] };
  const settings0 = Object.fromEntries(Object.entries(definition0).filter(([k]) => !TOP.has(k)));
  const state = {
    name: existing || "",
    description: definition0.description || "",
    entry: entryState(definition0.entry),
    steps: (definition0.steps || []).map(stepState),
    settings: Object.keys(settings0).length ? pretty(settings0) : "{}",
  };
  let problems = [];
  let timer = null;

  const name = input({ name: "name", value: state.name, placeholder: "welcome_series", readonly: existing ? true : null });
  const description = input({ name: "description", value: state.description, placeholder: "what this journey is for" });
  name.addEventListener("input", () => { state.name = name.value; changed(); });
  description.addEventListener("input", () => { state.description = description.value; changed(); });
  const entryHost = h("div.entry", { id: "journey-entry" });
  const stepsHost = h("div.steps", { id: "journey-steps" });
  const settings = h("textarea.json", { name: "settings", rows: 6, spellcheck: "false" });
  settings.value = state.settings;
  settings.addEventListener("input", () => { state.settings = settings.value; changed(); });
  const jsonView = h("pre.json", { id: "journey-json" });
  const graph = h("div#journey-graph.chart.tall");
  const status = h("div.status", { id: "save-status" });
  const saveButton = h("button.primary", { type: "submit" }, existing ? "Save changes" : "Save journey");
  const deleteButton = existing ? h("button.danger", { type: "button" }, "Delete") : null;
  const addButton = h("button", { type: "button", id: "add-step" }, "+ step");
  addButton.addEventListener("click", () => {
    const taken = new Set(state.steps.map((s) => s.id));
    let n = state.steps.length + 1;
    while (taken.has(`step_${n}`)) n += 1;
    state.steps.push({ id: `step_${n}`, kind: "wait", body: pretty(STARTERS.wait), next: "" });
    drawSteps();
    changed();
  });
  const form = h(
    "form.builder.journey-editor",
    { novalidate: true },
    h("div.row", field("Name", name, { path: "name", hint: "lower case letters, digits and _" }), field("Description", description, { path: "description" })),
    h("h3", "Who enters, and when"),
    entryHost,
    h("h3", "Steps (in order; each goes on to the next unless it says otherwise)"),
    stepsHost,
    h("div.toolbar", addButton),
    h("h3", "Other settings (JSON)"),
    field("Offers, conversion, holdout_percent, re_entry, exit_on, campaign", settings, { path: "settings", hint: 'for example {"holdout_percent": 10, "conversion": {"event": "Order Completed", "within": "7d"}}' }),
    h("div.toolbar", saveButton, " ", deleteButton, status),
  );
  root.append(
    h("div.page-head", h("h1", existing ? `Edit journey ${existing}` : "New journey"), link(existing ? `/journeys/${encodeURIComponent(existing)}` : "/journeys", existing ? "Back to the journey" : "All journeys")),
    h("div.builder-layout", h("div", form), h("aside", section("Steps and branches", graph), section("Definition (JSON)", jsonView))),
  );

  function drawEntry() {
    const kind = select(ENTRY_KINDS, { name: "entry_kind", value: state.entry.kind, "aria-label": "entry kind" });
    const target = input({ name: "entry_target", value: state.entry.target, placeholder: state.entry.kind === "event" ? "Order Completed" : "segment name" });
    const every = input({ name: "entry_every", value: state.entry.every, placeholder: "7d (blank: once)" });
    kind.addEventListener("change", () => { state.entry.kind = kind.value; drawEntry(); changed(); });
    target.addEventListener("input", () => { state.entry.target = target.value; changed(); });
    every.addEventListener("input", () => { state.entry.every = every.value; changed(); });
    const path = state.entry.kind === "schedule" ? "entry.schedule.segment" : `entry.${state.entry.kind}`;
    replace(
      entryHost,
      h(
        "div.row",
        field("Enter when", kind, { path: "entry" }),
        field(state.entry.kind === "event" ? "Event" : "Segment", target, { path }),
        state.entry.kind === "schedule" ? field("Repeat every", every, { path: "entry.schedule.every" }) : null,
      ),
    );
  }

  function drawSteps() {
    const cards = state.steps.map((step, i) => {
      const id = input({ name: `step_id_${i}`, value: step.id });
      const kind = select(KINDS, { name: `step_kind_${i}`, value: step.kind, "aria-label": "kind of step" });
      const next = input({ name: `step_next_${i}`, value: step.next, placeholder: "blank: the next step; end: leave" });
      const body = h("textarea.json", { name: `step_body_${i}`, rows: Math.min(10, step.body.split("\n").length + 1), spellcheck: "false" });
      body.value = step.body;
      id.addEventListener("input", () => { step.id = id.value; changed(); });
      next.addEventListener("input", () => { step.next = next.value; changed(); });
      body.addEventListener("input", () => { step.body = body.value; changed(); });
      kind.addEventListener("change", () => {
        step.kind = kind.value;
        step.body = pretty(STARTERS[step.kind]);
        drawSteps();
        changed();
      });
      const move = (to) => {
        const [moved] = state.steps.splice(i, 1);
        state.steps.splice(to, 0, moved);
        drawSteps();
        changed();
      };
      const tools = h(
        "div.toolbar",
        h("button", { type: "button", title: "move up", disabled: i === 0 ? true : null, onclick: () => move(i - 1) }, "↑"),
        h("button", { type: "button", title: "move down", disabled: i === state.steps.length - 1 ? true : null, onclick: () => move(i + 1) }, "↓"),
        h("button.danger", { type: "button", title: "remove", onclick: () => { state.steps.splice(i, 1); drawSteps(); changed(); } }, "✕"),
      );
      return h(
        "fieldset.step",
        { dataset: { step: String(i) } },
        h("div.row", field("Step id", id, { path: `steps[${i}].id` }), field("Kind", kind, { path: `steps[${i}]` }), field("Then go to", next, { path: `steps[${i}].next` }), tools),
        field(`${step.kind} (JSON)`, body, { path: `steps[${i}].${step.kind}` }),
      );
    });
    replace(stepsHost, ...(cards.length ? cards : [h("p.muted", "No steps yet: add one.")]));
    if (problems.length) showProblems(form, problems, status);
  }

  // The definition as typed, and the problems the page can see without the server.
  function build() {
    const found = [];
    const nameText = state.name.trim();
    if (!NAME.test(nameText)) found.push({ path: "name", message: "A name starts with a lower-case letter; then lower-case letters, digits or _ (up to 63)." });
    const entryPath = state.entry.kind === "schedule" ? "entry.schedule.segment" : `entry.${state.entry.kind}`;
    const target = state.entry.target.trim();
    if (!target) found.push({ path: entryPath, message: state.entry.kind === "event" ? "Name the event." : "Name the segment." });
    // What the form does not show of the saved entry (filters, `on`, `at`) is kept.
    const kind = state.entry.kind;
    const original = state.entry.original;
    const kept = original && typeof original[kind] === "object" ? original[kind] : null;
    let entry;
    if (kind === "schedule") {
      const schedule = { ...kept, segment: target };
      if (state.entry.every.trim()) schedule.every = state.entry.every.trim();
      else delete schedule.every;
      entry = { schedule };
    } else {
      entry = { [kind]: kept ? { ...kept, name: target } : target };
    }
    const seen = new Set();
    const steps = state.steps.map((step, i) => {
      const out = { id: step.id.trim() };
      if (!out.id) found.push({ path: `steps[${i}].id`, message: "Give the step an id." });
      else if (seen.has(out.id)) found.push({ path: `steps[${i}].id`, message: `Another step is called ${out.id}.` });
      seen.add(out.id);
      try {
        out[step.kind] = step.body.trim() ? JSON.parse(step.body) : {};
      } catch (error) {
        found.push({ path: `steps[${i}].${step.kind}`, message: `Not JSON: ${error.message}` });
        out[step.kind] = {};
      }
      const next = step.next.trim();
      if (next) out.next = next === "end" ? null : next;
      return out;
    });
    let extra = {};
    try {
      extra = state.settings.trim() ? JSON.parse(state.settings) : {};
      if (extra === null || typeof extra !== "object" || Array.isArray(extra)) throw new Error("an object {...} is needed");
      for (const key of Object.keys(extra)) if (TOP.has(key)) found.push({ path: "settings", message: `${key} has its own field above.` });
    } catch (error) {
      found.push({ path: "settings", message: `Not a JSON object: ${error.message}` });
      extra = {};
    }
    const definition = { ...extra, name: nameText, ...(state.description.trim() ? { description: state.description.trim() } : {}), entry, steps };
    return { definition, found };
  }

  function changed() {
    const { definition } = build();
    jsonView.textContent = pretty(definition);
    clearTimeout(timer);
    timer = setTimeout(() => drawGraph(graph, { definition }, {}, 0).catch(() => {}), DRAW_DELAY_MS);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    const { definition, found } = build();
    problems = found;
    if (problems.length) return showProblems(form, problems, status);
    clearProblems(form);
    saveButton.disabled = true;
    try {
      const answer = await put(`/api/v1/journeys/${encodeURIComponent(definition.name)}`, definition);
      ctx.navigate(`/journeys/${encodeURIComponent(answer.name)}?saved=${answer.version}`);
    } catch (error) {
      problems = error.problems || [];
      if (problems.length) showProblems(form, problems, status);
      else status.replaceChildren(notice(error.message));
    } finally {
      saveButton.disabled = false;
    }
  });

  if (deleteButton) {
    deleteButton.addEventListener("click", async () => {
      if (!window.confirm(`Delete journey ${existing}? People on it now leave it.`)) return;
      try {
        await del(`/api/v1/journeys/${encodeURIComponent(existing)}`);
        ctx.navigate("/journeys");
      } catch (error) {
        status.replaceChildren(notice(error.message));
      }
    });
  }

  drawEntry();
  drawSteps();
  const { definition } = build();
  jsonView.textContent = pretty(definition);
  await drawGraph(graph, { definition }, {}, 0);
}
