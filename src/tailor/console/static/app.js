// The console's router: one ES module per page under ./pages, loaded when its path is opened.
// A page module exports `default async function render(root, ctx)`; ctx gives it the path
// parameters, the query, `every(fn, ms)` for polling (stopped when the page is left), `navigate`,
// and an AbortSignal that fires when the user moves on. Adding a page (journeys, say) is one entry
// in ROUTES and one module.

import { whenUnauthorised, whoami, signOut } from "./lib/api.js";
import { h, replace, notice } from "./lib/dom.js";
import { disposeCharts } from "./lib/charts.js";

const ROUTES = [
  { path: "/", page: "overview", title: "Overview", nav: true },
  { path: "/sources", page: "sources", title: "Sources", nav: true },
  { path: "/people", page: "people", title: "People", nav: true },
  { path: "/profiles/:id", page: "profile", title: "Profile" },
  { path: "/segments", page: "segments", title: "Segments", nav: true },
  { path: "/segments/new", page: "segment_builder", title: "New segment" },
  { path: "/segments/:name", page: "segment_builder", title: "Segment" },
  { path: "/journeys", page: "journeys", title: "Journeys", nav: true },
  { path: "/journeys/new", page: "journey_editor", title: "New journey" },
  { path: "/journeys/:name/edit", page: "journey_editor", title: "Edit journey" },
  { path: "/journeys/:name", page: "journeys", title: "Journey" },
  { path: "/analytics", page: "analytics", title: "Analytics", nav: true },
  { path: "/privacy", page: "privacy", title: "Privacy", nav: true },
  { path: "/signin", page: "signin", title: "Sign in", public: true },
];

const root = document.getElementById("page");
let current = null; // { controller, timers }
let user = null;

function match(pathname) {
  for (const route of ROUTES) {
    const names = [];
    const pattern = route.path.replace(/:(\w+)/g, (_, name) => {
      names.push(name);
      return "([^/]+)";
    });
    const m = new RegExp(`^${pattern}/?$`).exec(pathname);
    if (m) return { route, params: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
  }
  return null;
}

export function navigate(to, { replace: replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  return show();
}

function leave() {
  if (!current) return;
  current.controller.abort();
  for (const t of current.timers) clearInterval(t);
  disposeCharts();
  current = null;
}

function drawNav(active) {
  const nav = document.getElementById("nav");
  replace(
    nav,
    ROUTES.filter((r) => r.nav).map((r) =>
      h("a", { href: r.path, "data-link": true, "aria-current": active && active.page === r.page ? "page" : null }, r.title),
    ),
  );
  const who = document.getElementById("who");
  if (user) {
    replace(
      who,
      h("span.muted", `${user.name} (${user.scopes.join(", ")})`),
      " ",
      h("button.link", { type: "button", onclick: async () => { await signOut(); user = null; navigate("/signin"); } }, "Sign out"),
    );
  } else replace(who);
}

async function show() {
  leave();
  const found = match(location.pathname);
  const controller = new AbortController();
  const timers = [];
  current = { controller, timers };
  document.body.dataset.state = "loading";
  if (!found) {
    drawNav(null);
    replace(root, h("h1", "Not found"), h("p", "No console page at ", h("code", location.pathname), "."));
    document.body.dataset.state = "ready";
    return;
  }
  const { route, params } = found;
  if (!route.public && !user) {
    try {
      user = await whoami();
    } catch {
      const next = location.pathname + location.search;
      history.replaceState(null, "", `/signin?next=${encodeURIComponent(next)}`);
      return show();
    }
  }
  document.title = `${route.title} · Tailor`;
  document.body.dataset.page = route.page;
  drawNav(route);
  const ctx = {
    params,
    query: new URLSearchParams(location.search),
    signal: controller.signal,
    navigate,
    user,
    setUser: (u) => { user = u; },
    every(fn, ms) {
      const t = setInterval(() => { if (!controller.signal.aborted) fn(); }, ms);
      timers.push(t);
      return t;
    },
  };
  replace(root, h("p.muted", "Loading…"));
  try {
    const module = await import(`./pages/${route.page}.js`);
    const page = h("div.page", { dataset: { page: route.page } });
    replace(root, page);
    await module.default(page, ctx);
    if (!controller.signal.aborted) document.body.dataset.state = "ready";
  } catch (error) {
    if (controller.signal.aborted || error.name === "AbortError") return;
    console.error(error);
    replace(root, notice(`This page could not be shown: ${error.message}`));
    document.body.dataset.state = "error";
  }
}

whenUnauthorised(() => {
  user = null;
  if (location.pathname !== "/signin") {
    const next = location.pathname + location.search;
    navigate(`/signin?next=${encodeURIComponent(next)}&expired=1`, { replace: true });
  }
});

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-link]");
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const href = a.getAttribute("href");
  if (!href || !href.startsWith("/")) return;
  event.preventDefault();
  navigate(href);
});

window.addEventListener("popstate", show);
// Leaving a page aborts its requests; a handler still waiting on one has nothing left to do.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason && event.reason.name === "AbortError") event.preventDefault();
});
show();
