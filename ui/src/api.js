// The one way pages talk to the server: JSON in and out, errors as exceptions carrying the
// server's message (and, for a bad filter, the position it points at).

import { query } from "./route.js";

let session = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the server answered ${status}`);
    this.status = status;
    this.position = body && typeof body.position === "number" ? body.position : null;
    this.parameter = (body && body.parameter) || null;
  }
}

async function call(method, path, body, retried = false) {
  const headers = { accept: "application/json" };
  if (method !== "GET") {
    const s = await getSession();
    headers["content-type"] = "application/json";
    headers[s.csrf_header] = s.csrf;
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let parsed = null;
  try {
    parsed = await response.json();
  } catch (_) {
    parsed = null;
  }
  // A restarted server has a new CSRF token: fetch it and try once more.
  if (response.status === 403 && method !== "GET" && !retried) {
    session = null;
    return call(method, path, body, true);
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const get = (path, params = {}) => call("GET", path + query(params));
export const post = (path, body) => call("POST", path, body);

export async function getSession() {
  if (session === null) session = await call("GET", "/api/session");
  return session;
}

export const enc = encodeURIComponent;
