// Form fields and their errors. Every input that maps to a field of the request carries
// data-path (the same path the API names in problems[].path, such as "condition.all[1].within"),
// so an error from the page's own checks or from the server is shown next to that field, and
// nothing the user typed is touched.

import { h } from "./dom.js";

export function field(label, input, { path, hint } = {}) {
  if (path) input.dataset.path = path;
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div.field", { dataset: path ? { field: path } : {} }, h("label", { for: id }, label), input, hint ? h("div.hint", hint) : null);
}

export function input(attrs = {}) {
  return h("input", { type: "text", autocomplete: "off", ...attrs });
}

export function select(options, attrs = {}) {
  const el = h("select", attrs);
  for (const option of options) {
    const [value, label] = Array.isArray(option) ? option : [option, option];
    el.append(h("option", { value, selected: String(value) === String(attrs.value ?? "") }, label));
  }
  if (attrs.value !== undefined) el.value = attrs.value;
  return el;
}

export function clearProblems(root) {
  for (const el of root.querySelectorAll(".field-error, .form-problems")) el.remove();
  for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

// Shows each problem next to the input whose data-path is the problem's path, or the nearest
// enclosing path (a problem about "condition.all[0]" goes to that condition's first field);
// problems with no field at all are listed at the top of the form.
export function showProblems(root, problems, summaryHost) {
  clearProblems(root);
  const unplaced = [];
  for (const problem of problems) {
    const target = findField(root, problem.path || "");
    if (!target) {
      unplaced.push(problem);
      continue;
    }
    target.setAttribute("aria-invalid", "true");
    const message = h("div.field-error", { role: "alert", dataset: { errorFor: problem.path || "" } }, problem.message);
    const holder = target.closest(".field") || target.parentElement;
    holder.append(message);
  }
  if (unplaced.length) {
    const list = h("ul.form-problems", { role: "alert" }, unplaced.map((p) => h("li", p.path ? `${p.path}: ${p.message}` : p.message)));
    (summaryHost || root).prepend(list);
  }
  const first = root.querySelector("[aria-invalid]");
  if (first) first.focus({ preventScroll: false });
}

function findField(root, path) {
  let p = path;
  while (p) {
    const exact = root.querySelector(`[data-path="${CSS.escape(p)}"]`);
    if (exact) return exact;
    const within = root.querySelector(`[data-path^="${CSS.escape(p)}."], [data-path^="${CSS.escape(p)}["]`);
    if (within) return within;
    p = parent(p);
  }
  return null;
}

function parent(path) {
  const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
  return cut > 0 ? path.slice(0, cut) : "";
}

// Turns what was typed into a JSON value: numbers and booleans as such, lists for in/not_in.
export function typed(text, op) {
  if (op === "in" || op === "not_in") return String(text).split(",").map((s) => typed(s.trim())).filter((s) => s !== "");
  const t = String(text ?? "").trim();
  if (t === "true") return true;
  if (t === "false") return false;
  if (t !== "" && !Number.isNaN(Number(t)) && /^-?\d/.test(t)) return Number(t);
  return t;
}

export function untyped(value) {
  if (Array.isArray(value)) return value.map(untyped).join(", ");
  if (value === null || value === undefined) return "";
  return String(value);
}
