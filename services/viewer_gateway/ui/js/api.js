// The gateway's API, same origin, session cookie (HTTP-only): errors carry the gateway's reason.
import { fr, frValidation } from "./fr.js";

export class ApiError extends Error {
  constructor(status, detail, body, headers) {
    super(Array.isArray(body?.detail) ? frValidation(body.detail) : fr(detail));
    this.status = status;
    this.detail = detail;
    this.body = body;
    this.headers = headers;
  }
}

function detailOf(body, status) {
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    // FastAPI's validation errors: say which field and why.
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join(" ; ");
  }
  return detail || `erreur ${status}`;
}

export async function request(method, path, body, { raw = false } = {}) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (!response.ok) {
    let payload = null;
    try { payload = await response.json(); } catch { payload = null; }
    throw new ApiError(response.status, detailOf(payload, response.status), payload, response.headers);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body = {}) => request("POST", path, body),
  put: (path, body) => request("PUT", path, body),
  patch: (path, body) => request("PATCH", path, body),
  del: (path) => request("DELETE", path),
};

/** Query string from an object, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
