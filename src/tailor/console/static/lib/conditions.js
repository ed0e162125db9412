// The segment builder's condition tree: what the user edits (nodes holding exactly what was
// typed), the segment definition JSON it stands for, and each node's editor. An input's data-path
// is the path of its field in that JSON, the path the API names in problems[].path.

import { h, append } from "./dom.js";

const put = (el, ...children) => append(el, children); // skips nulls, unlike Element.append
import { field, input, select, typed, untyped } from "./forms.js";

export const KINDS = [
  ["event", "performed an event"],
  ["trait", "profile trait"],
  ["computed", "computed trait"],
  ["segment", "in segment"],
  ["consent", "has consent"],
  ["group", "group of conditions"],
];
const NO_VALUE = ["exists", "not_exists"];
const DURATION = /^\s*\d+\s*[smhdw]\s*$/;

export function blank(kind) {
  switch (kind) {
    case "group": return { kind, mode: "all", negate: false, children: [blank("event")] };
    case "event": return { kind, negate: false, event: "", where: [], within: "", measure: "count", of: "", op: ">=", value: "1" };
    case "trait": return { kind, negate: false, trait: "", op: "=", value: "" };
    case "computed": return { kind, negate: false, computed: "", op: ">=", value: "" };
    case "segment": return { kind, negate: false, segment: "" };
    default: return { kind: "consent", negate: false, consent: "email_marketing", channel: "" };
  }
}

// JSON -> tree (for editing a saved segment); anything unknown becomes a group of what it holds.
export function fromDefinition(condition) {
  const node = read(condition);
  return node.kind === "group" ? node : { kind: "group", mode: "all", negate: false, children: [node] };
}

function read(c) {
  if (c && c.not) return { ...read(c.not), negate: true };
  if (c && (c.all || c.any)) return { kind: "group", mode: c.all ? "all" : "any", negate: false, children: (c.all || c.any).map(read) };
  if (c && (c.event !== undefined || c.type !== undefined)) {
    return {
      kind: "event", negate: false, event: untyped(c.event ?? ""), within: c.within || "",
      where: (c.where || []).map((w) => ({ property: w.property ?? w.field ?? "", op: w.op || "=", value: untyped(w.value) })),
      measure: c.aggregate || "count", of: c.of || "", op: c.op || ">=", value: c.value === undefined ? "1" : untyped(c.value),
    };
  }
  if (c && c.trait !== undefined) return { kind: "trait", negate: false, trait: c.trait, op: c.op || "=", value: untyped(c.value) };
  if (c && c.computed !== undefined) return { kind: "computed", negate: false, computed: c.computed, op: c.op || "=", value: untyped(c.value) };
  if (c && c.segment !== undefined) return { kind: "segment", negate: false, segment: c.segment };
  if (c && c.consent !== undefined) return { kind: "consent", negate: false, consent: c.consent, channel: c.channel || "" };
  return blank("event");
}

// Tree -> JSON, as POST /api/v1/segments takes it.
export function toDefinition(node) {
  const inner = body(node);
  return node.negate ? { not: inner } : inner;
}

function body(node) {
  switch (node.kind) {
    case "group": return { [node.mode]: node.children.map(toDefinition) };
    case "event": {
      const out = { event: node.event.trim() };
      if (node.where.length) out.where = node.where.map((w) => ({ property: w.property.trim(), op: w.op, ...(NO_VALUE.includes(w.op) ? {} : { value: typed(w.value, w.op) }) }));
      if (node.within.trim()) out.within = node.within.trim();
      if (node.measure !== "count") {
        out.aggregate = node.measure;
        out.of = node.of.trim();
      }
      out.op = node.op;
      out.value = typed(node.value, node.op);
      return out;
    }
    case "trait": return { trait: node.trait.trim(), op: node.op, ...(NO_VALUE.includes(node.op) ? {} : { value: typed(node.value, node.op) }) };
    case "computed": return { computed: node.computed.trim(), op: node.op, ...(NO_VALUE.includes(node.op) ? {} : { value: typed(node.value, node.op) }) };
    case "segment": return { segment: node.segment.trim() };
    default: return node.channel ? { consent: node.consent, channel: node.channel } : { consent: node.consent };
  }
}

// Where a node's fields sit in the JSON: `not` adds a level, groups add `.all[i]` / `.any[i]`.
export const at = (path, node) => (node.negate ? `${path}.not` : path);

// The page's own checks, with the same paths the server uses.
export function check(node, path, problems) {
  const p = at(path, node);
  const need = (value, key, message) => {
    if (!String(value ?? "").trim()) problems.push({ path: `${p}.${key}`, message });
  };
  if (node.kind === "group") {
    if (!node.children.length) problems.push({ path: `${p}.${node.mode}`, message: "Add at least one condition." });
    node.children.forEach((child, i) => check(child, `${p}.${node.mode}[${i}]`, problems));
  } else if (node.kind === "event") {
    need(node.event, "event", "Choose or type an event name.");
    if (node.within.trim() && !DURATION.test(node.within)) problems.push({ path: `${p}.within`, message: `“${node.within}” is not a duration: write a number and a unit, such as 30d, 12h or 2w.` });
    if (node.measure !== "count") need(node.of, "of", `Name the property to ${node.measure} (such as total).`);
    if (Number.isNaN(Number(node.value)) || !String(node.value).trim()) problems.push({ path: `${p}.value`, message: "Enter a number." });
    node.where.forEach((w, i) => {
      if (!w.property.trim()) problems.push({ path: `${p}.where[${i}].property`, message: "Name the property." });
      if (!NO_VALUE.includes(w.op) && !String(w.value).trim()) problems.push({ path: `${p}.where[${i}].value`, message: "Enter a value." });
    });
  } else if (node.kind === "trait" || node.kind === "computed") {
    need(node[node.kind], node.kind, "Choose a trait.");
    if (!NO_VALUE.includes(node.op)) need(node.value, "value", "Enter a value.");
  } else if (node.kind === "segment") {
    need(node.segment, "segment", "Choose a segment.");
  }
  return problems;
}

// One node's editor. `changed(structural)` is called on every edit; a structural change (a
// condition added, removed or of another kind) redraws the tree, a typed change does not, so the
// input keeps its focus and its text.
export function editor(node, path, vocab, changed, remove) {
  const p = at(path, node);
  const bind = (el, key, target = node, structural = false) => {
    el.value = target[key] ?? "";
    el.addEventListener(el.tagName === "SELECT" ? "change" : "input", () => {
      target[key] = el.type === "checkbox" ? el.checked : el.value;
      changed(structural);
    });
    return el;
  };
  const kind = select(KINDS, { value: node.kind, "aria-label": "kind of condition" });
  kind.addEventListener("change", () => {
    Object.keys(node).forEach((k) => delete node[k]);
    Object.assign(node, blank(kind.value));
    changed(true);
  });
  const negate = h("input", { type: "checkbox", checked: node.negate, "aria-label": "not" });
  negate.addEventListener("change", () => {
    node.negate = negate.checked;
    changed(true);
  });
  const head = h("div.cond-head", kind, h("label.not", negate, " not"), remove ? h("button.link.remove", { type: "button", onclick: remove, "aria-label": "remove condition" }, "remove") : null);
  const wrap = h(`div.cond.cond-${node.kind}`, { dataset: { path: p, kind: node.kind } }, head);
  const ops = vocab.operators || ["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "contains", "starts_with", "exists", "not_exists"];

  if (node.kind === "group") {
    const mode = select([["all", "all of"], ["any", "any of"]], { value: node.mode, "aria-label": "all or any" });
    bind(mode, "mode", node, true);
    head.insertBefore(mode, head.children[1]);
    const children = h("div.cond-children");
    node.children.forEach((child, i) => {
      children.append(editor(child, `${p}.${node.mode}[${i}]`, vocab, changed, () => {
        node.children.splice(i, 1);
        changed(true);
      }));
    });
    const add = h("button", { type: "button" }, "+ condition");
    add.addEventListener("click", () => {
      node.children.push(blank("event"));
      changed(true);
    });
    wrap.append(children, add);
    return wrap;
  }
  const body = h("div.cond-body");
  wrap.append(body);
  if (node.kind === "event") {
    const names = vocab.events.map((e) => e.name);
    put(body, 
      field("Event", bind(input({ list: "vocab-events", placeholder: "Order Completed" }), "event"), { path: `${p}.event` }),
      field("In the last", bind(input({ placeholder: "90d (empty: ever)", size: 8 }), "within"), { path: `${p}.within`, hint: "s, m, h, d or w" }),
      field("Measure", bind(select(["count", ...(vocab.aggregates || []).filter((a) => a !== "count")]), "measure", node, true), { path: `${p}.aggregate` }),
      node.measure !== "count" ? field("Of property", bind(input({ placeholder: "total" }), "of"), { path: `${p}.of` }) : null,
      field("Is", bind(select(["=", "!=", "<", "<=", ">", ">="]), "op"), { path: `${p}.op` }),
      field("Value", bind(input({ size: 6 }), "value"), { path: `${p}.value` }),
    );
    const filters = h("div.filters");
    node.where.forEach((w, i) => {
      const wp = `${p}.where[${i}]`;
      put(filters, 
        h(
          "div.filter",
          h("span.muted", "where"),
          field("Property", bind(input({ list: `vocab-props-${names.indexOf(node.event)}`, placeholder: "category" }), "property", w), { path: `${wp}.property` }),
          field("Op", bind(select(ops.filter((o) => !["within", "older_than"].includes(o))), "op", w, true), { path: `${wp}.op` }),
          NO_VALUE.includes(w.op) ? null : field("Value", bind(input({ placeholder: "Furniture" }), "value", w), { path: `${wp}.value` }),
          h("button.link", { type: "button", onclick: () => { node.where.splice(i, 1); changed(true); } }, "remove"),
        ),
      );
    });
    const addFilter = h("button.link", { type: "button" }, "+ property filter");
    addFilter.addEventListener("click", () => {
      node.where.push({ property: "", op: "=", value: "" });
      changed(true);
    });
    wrap.append(filters, addFilter);
  } else if (node.kind === "trait" || node.kind === "computed") {
    const options = node.kind === "trait" ? vocab.traits.map(([t]) => t) : vocab.computed;
    put(body, 
      field(node.kind === "trait" ? "Trait" : "Computed trait", bind(input({ list: `vocab-${node.kind}`, placeholder: options[0] || "" }), node.kind), { path: `${p}.${node.kind}` }),
      field("Is", bind(select(ops), "op", node, true), { path: `${p}.op` }),
      NO_VALUE.includes(node.op) ? null : field("Value", bind(input({ placeholder: node.op === "in" ? "London, Leeds" : "" }), "value"), { path: `${p}.value`, hint: node.op === "in" || node.op === "not_in" ? "comma-separated" : null }),
    );
  } else if (node.kind === "segment") {
    put(body, field("Segment", bind(select(["", ...vocab.segments]), "segment"), { path: `${p}.segment` }));
  } else {
    put(body, 
      field("Purpose", bind(select(vocab.purposes), "consent"), { path: `${p}.consent` }),
      field("Channel", bind(select([["", "any channel"], "email", "sms", "push", "web"]), "channel"), { path: `${p}.channel` }),
    );
  }
  return wrap;
}

export function datalists(vocab, properties) {
  return h(
    "div.datalists",
    h("datalist", { id: "vocab-events" }, vocab.events.map((e) => h("option", { value: e.name }, `${e.type} · ${e.events}`))),
    h("datalist", { id: "vocab-trait" }, vocab.traits.map(([t, n]) => h("option", { value: t }, `${n} profiles`))),
    h("datalist", { id: "vocab-computed" }, vocab.computed.map((t) => h("option", { value: t }))),
    ...Object.entries(properties).map(([index, keys]) => h("datalist", { id: `vocab-props-${index}` }, keys.map((k) => h("option", { value: k.key }, k.examples.join(", "))))),
  );
}
