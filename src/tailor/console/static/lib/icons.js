// Small line icons (24x24 viewBox) for channels and devices on the timeline and profile.

const PATHS = {
  web: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zm0 0c2.5 2.4 3.8 5.4 3.8 9s-1.3 6.6-3.8 9m0-18C9.5 5.4 8.2 8.4 8.2 12s1.3 6.6 3.8 9M3.5 9h17M3.5 15h17",
  app: "M8 2.5h8a1.5 1.5 0 0 1 1.5 1.5v16a1.5 1.5 0 0 1-1.5 1.5H8A1.5 1.5 0 0 1 6.5 20V4A1.5 1.5 0 0 1 8 2.5zM10.5 18.5h3M9 6h6v8H9z",
  email: "M3.5 6h17v12h-17zM3.5 6l8.5 7 8.5-7",
  sms: "M4 5h16v11H9l-5 4zM8 9.5h8M8 12.5h5",
  server: "M4 4h16v6H4zM4 14h16v6H4zM7 7h.01M7 17h.01",
  crm: "M9 8a3 3 0 1 0 6 0 3 3 0 0 0-6 0zM4 20c0-4 3.6-6 8-6s8 2 8 6",
  call_centre: "M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2z",
  checkout: "M4 5h2l2.4 10.2a1 1 0 0 0 1 .8h7.9a1 1 0 0 0 1-.8L20 8H7M10 20h.01M17 20h.01",
  desktop_web: "M3 4h18v12H3zM8 20h8M12 16v4",
  mobile_web: "M8 2.5h8a1.5 1.5 0 0 1 1.5 1.5v16a1.5 1.5 0 0 1-1.5 1.5H8A1.5 1.5 0 0 1 6.5 20V4A1.5 1.5 0 0 1 8 2.5zM11 18.5h2",
  app_ios: "M15 3c-1 .1-2.2.8-2.8 1.6-.6.7-1 1.8-.9 2.7 1 .1 2.1-.6 2.7-1.4.6-.8 1-1.8 1-2.9zM17.6 12.7c0-2 1.6-2.9 1.7-3-1-1.4-2.4-1.6-2.9-1.6-1.2-.1-2.4.7-3 .7-.6 0-1.6-.7-2.6-.7-1.3 0-2.6.8-3.3 2-1.4 2.5-.4 6.1 1 8.1.7 1 1.4 2 2.5 2 1 0 1.4-.6 2.6-.6s1.5.6 2.6.6c1.1 0 1.7-1 2.4-2 .8-1.1 1.1-2.2 1.1-2.2s-2.1-.8-2.1-3.3z",
  app_android: "M7 10h10v7a1 1 0 0 1-1 1H8a1 1 0 0 1-1-1zM7 9a5 5 0 0 1 10 0zM9.5 6.5 8 4M14.5 6.5 16 4M10 7.5h.01M14 7.5h.01M9 18v3M15 18v3M5 11v5M19 11v5",
  smart_tv: "M3 6h18v11H3zM9 21h6M8 3l4 3 4-3",
  tablet: "M6 3h12a1 1 0 0 1 1 1v16a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1zM11 18h2",
  unknown: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6V14M12 17h.01",
};

const NS = "http://www.w3.org/2000/svg";

export function icon(name, title) {
  const key = PATHS[name] ? name : name && name.startsWith("app_") ? "app" : "unknown";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${key}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title || name || "unknown");
  svg.dataset.icon = key;
  const t = document.createElementNS(NS, "title");
  t.textContent = title || name || "unknown";
  svg.append(t);
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", PATHS[key]);
  svg.append(path);
  return svg;
}
