// The page's only door to the engine: same-origin JSON over HTTP and WebSockets.
// The API key lives in sessionStorage (this tab only) and travels as a header,
// never in a URL that a proxy could log: a WebSocket carries a single-use
// ticket (POST /api/ws-tickets) instead.

const KEY_STORAGE = "order-engine.apiKey";
const keyListeners = new Set();

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

// Called with a message when the engine says 401: the page asks for a key.
export function onKeyNeeded(listener) {
  keyListeners.add(listener);
}

export function keyNeeded(message) {
  for (const listener of keyListeners) listener(message);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.message || problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || `http_${status}`;
    this.problem = problem;
  }
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const key = apiKey();
  const all = { accept: "application/json", ...headers };
  if (key) all["x-api-key"] = key;
  if (body !== undefined) all["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: all,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let payload = null;
  if (text) {
    try { payload = JSON.parse(text); } catch { payload = { message: text.slice(0, 200) }; }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, payload);
    if (response.status === 401) keyNeeded(error.message);
    throw error;
  }
  return payload;
}

export function socketUrl(path, params = {}) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
  }
  return url.toString();
}
