// Building elements without a framework: h("tag#id.class", {attrs}, children...). Text is always set
// as text (never parsed as HTML), so values from the store cannot inject markup.

export function h(spec, attrs, ...children) {
  const [head, ...classes] = spec.split(".");
  const [tag, id] = head.split("#");
  const el = document.createElement(tag || "div");
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

const numberFormat = new Intl.NumberFormat("en-GB");
export const num = (n) => (n === null || n === undefined ? "—" : numberFormat.format(n));
export const pct = (x, digits = 1) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(digits)}%`);
export const money = (x) => (x === null || x === undefined ? "—" : x.toLocaleString("en-GB", { maximumFractionDigits: 2 }));

export function when(ts) {
  if (!ts) return "—";
  const d = new Date(typeof ts === "number" ? ts * 1000 : ts);
  return d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

export function ago(ts) {
  if (!ts) return "—";
  const seconds = (Date.now() - new Date(typeof ts === "number" ? ts * 1000 : ts).getTime()) / 1000;
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

export function display(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function link(href, ...children) {
  return h("a", { href, "data-link": true }, ...children);
}

export function table(columns, rows, { empty = "Nothing yet.", className = "" } = {}) {
  if (!rows.length) return h("p.muted.empty", empty);
  return h(
    `table${className ? "." + className : ""}`,
    h("thead", h("tr", columns.map((c) => h("th", c.label)))),
    h("tbody", rows.map((row) => h("tr", columns.map((c) => h(c.numeric ? "td.num" : "td", c.cell(row)))))),
  );
}

export function tile(label, value, { id, note } = {}) {
  return h("div.tile", { dataset: id ? { tile: id } : {} }, h("div.tile-label", label), h("div.tile-value", value), note ? h("div.tile-note", note) : null);
}

export function section(title, ...children) {
  return h("section.card", h("h2", title), ...children);
}

export function notice(message, kind = "error") {
  return h(`div.notice.${kind}`, { role: kind === "error" ? "alert" : "status" }, message);
}

// For the few places a library takes HTML (chart tooltips): text from the store made inert.
export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
