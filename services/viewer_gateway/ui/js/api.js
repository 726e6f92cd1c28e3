// The gateway's API, same origin, session cookie (HTTP-only): errors carry the gateway's reason.
import { frProblem } from "./fr.js";

export class ApiError extends Error {
  constructor(status, detail, body, headers) {
    super(body ? frProblem(body, status) : frProblem({ detail }, status));
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

export async function request(method, path, body, { raw = false, signal } = {}) {
  const options = { method, headers: {}, credentials: "same-origin", signal };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (!response.ok) {
    let payload;
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

/** What a superseded request resolves to: an answer nobody should draw any more. */
export const SUPERSEDED = Symbol("superseded");

/**
 * "Latest answer wins" for one thing a screen shows (a period's timeline, a search's results, a
 * camera's mask versions): each new turn aborts the previous turn's request still on its way, and
 * the previous turn knows it is no longer current — an older answer arriving late is never drawn
 * over a newer one, whatever order the network delivers them in.
 *
 *   const versions = latest();
 *   const answer = await versions.get(url);   // one request as its own turn
 *   if (answer === SUPERSEDED) return;
 *
 *   const turn = seeks.turn();                 // several steps (request, decode…) as one turn
 *   const response = await turn.request("GET", url, undefined, { raw: true });
 *   if (!turn.current) return;
 */
export function latest() {
  let active = null;
  const channel = {
    turn() {
      active?.controller.abort();
      const controller = new AbortController();
      const turn = {
        controller,
        get current() { return active === turn; },
        request: (method, path, body, options = {}) => request(method, path, body, { ...options, signal: controller.signal }),
      };
      active = turn;
      return turn;
    },
    /** The turn now current (to continue it without starting a new one), or null. */
    get active() { return active; },
    async get(path) {
      const turn = channel.turn();
      try {
        const answer = await turn.request("GET", path);
        return turn.current ? answer : SUPERSEDED;
      } catch (err) {
        if (!turn.current || err.name === "AbortError") return SUPERSEDED;
        throw err;
      }
    },
    /** The screen is left: nothing on its way is wanted any more. */
    cancel() { active?.controller.abort(); active = null; },
  };
  return channel;
}

/** True for the error a superseded turn's request ends with (nothing to report to the agent). */
export function superseded(err, turn) {
  return err?.name === "AbortError" || (turn !== undefined && !turn.current);
}
