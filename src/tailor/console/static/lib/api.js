// Calls to Tailor's HTTP API from the console: the session cookie goes with every request, and
// unsafe requests carry the session's CSRF token, kept in localStorage after sign-in (the cookie
// itself is HttpOnly, so scripts never see the session id).

const CSRF_KEY = "tailor.csrf";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.body = body || {};
    // Definitions and forms answer 422 with problems[].path naming the field.
    this.problems = (body && body.problems) || [];
  }
}

export function setCsrf(token) {
  if (token) localStorage.setItem(CSRF_KEY, token);
  else localStorage.removeItem(CSRF_KEY);
}

let onUnauthorised = () => {};
export function whenUnauthorised(callback) {
  onUnauthorised = callback;
}

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  }
  return u.pathname + u.search;
}

export async function api(path, { method = "GET", body, query, signal, text = false, headers = {} } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (method !== "GET" && method !== "HEAD") {
    const csrf = localStorage.getItem(CSRF_KEY);
    if (csrf) h["X-CSRF-Token"] = csrf;
  }
  let payload = body;
  if (body !== undefined && typeof body !== "string" && !(body instanceof Blob)) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(url(path, query), { method, headers: h, body: payload, signal, credentials: "same-origin" });
  const type = response.headers.get("content-type") || "";
  const data = type.includes("application/json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new ApiError(response.status, typeof data === "object" ? data : { message: String(data).slice(0, 300) });
    if (response.status === 401 && !path.startsWith("/api/v1/sessions")) onUnauthorised(error);
    throw error;
  }
  return text && typeof data !== "string" ? JSON.stringify(data) : data;
}

export const get = (path, query, options = {}) => api(path, { ...options, query });
export const post = (path, body, options = {}) => api(path, { ...options, method: "POST", body });
export const put = (path, body, options = {}) => api(path, { ...options, method: "PUT", body });
export const del = (path, options = {}) => api(path, { ...options, method: "DELETE" });

export async function signIn(username, password) {
  const answer = await post("/api/v1/sessions", { username, password });
  setCsrf(answer.csrf_token);
  return answer;
}

export async function signOut() {
  try {
    await del("/api/v1/sessions/current");
  } finally {
    setCsrf(null);
  }
}

export const whoami = () => get("/api/v1/sessions/current");
