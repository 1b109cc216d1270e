// @ts-check
/**
 * The page's calls to the gateway (`/api/daydream/*`, same-origin: the session cookie goes
 * along). Each stream call resolves to the lifecycle event its answer means and never
 * rejects (no answer reads as status 0); what a body says is read by `readers.js`.
 *
 * @module gateway
 */

import { streamPaths } from "./lifecycle/stream.js";
import { activeStreamIdOf, errorMessage, isNotReadyBody, readConfig, readStatusEvent } from "./readers.js";

/** @typedef {import("./lifecycle.js").LifecycleEvent} LifecycleEvent */

/**
 * @param {string} url
 * @param {RequestInit} [init]
 */
function api(url, init = {}) {
  return fetch(url, { credentials: "same-origin", ...init });
}

/**
 * The body of an answer as JSON, or null when it is not JSON.
 * @param {Response} res
 * @returns {Promise<unknown>}
 */
async function jsonOrNull(res) {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/**
 * Reads a gateway error body (`{error, message}`) into one line.
 * @param {Response} res
 * @returns {Promise<{ message: string, body: unknown }>}
 */
async function readError(res) {
  const body = await jsonOrNull(res);
  return { message: errorMessage(body, res.status), body };
}

/** @param {unknown} err */
const reason = (err) => (err instanceof Error ? err.message : String(err));

/**
 * `GET /api/daydream/config`; rejects with the gateway's message when it cannot be had.
 * @returns {Promise<import("./readers.js").DreamConfig>}
 */
export async function loadConfig() {
  const res = await api("/api/daydream/config", { cache: "no-store" });
  if (!res.ok) throw new Error((await readError(res)).message);
  return readConfig(await res.json());
}

/**
 * Creates the stream: CREATED, or CREATE_FAILED (with the session's old stream on a 409).
 * @param {number} session
 * @param {unknown} payload
 * @returns {Promise<LifecycleEvent>}
 */
export async function createStream(session, payload) {
  try {
    const res = await api("/api/daydream/streams", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    if (res.ok) return { type: "CREATED", session, stream: await res.json() };
    const { message, body } = await readError(res);
    return { type: "CREATE_FAILED", session, status: res.status, message, activeStreamId: activeStreamIdOf(body) };
  } catch (err) {
    return { type: "CREATE_FAILED", session, status: 0, message: reason(err) };
  }
}

/**
 * Deletes a stream (best effort: the gateway reaps abandoned streams). `keepalive`: it
 * survives the page going away.
 * @param {string} id
 */
export async function deleteStream(id) {
  try {
    await api(streamPaths(id).stream, { method: "DELETE", keepalive: true });
  } catch {
    // The gateway reaps abandoned streams.
  }
}

/**
 * One status poll. A poll that hangs (server gone quiet) ends as a network error after `timeoutMs`.
 * @param {number} session
 * @param {string} streamId
 * @param {number} timeoutMs
 * @returns {Promise<LifecycleEvent>}
 */
export async function pollStatus(session, streamId, timeoutMs) {
  try {
    const res = await api(streamPaths(streamId).status, { cache: "no-store", signal: AbortSignal.timeout(timeoutMs) });
    return { type: "STATUS_RESULT", session, ok: res.ok, httpStatus: res.status, body: await jsonOrNull(res) };
  } catch {
    return { type: "STATUS_RESULT", session, ok: false, httpStatus: 0, body: null };
  }
}

/**
 * A live prompt update (PATCH); a failure says whether the stream was "not ready".
 * @param {number} session
 * @param {string} streamId
 * @param {unknown} body
 * @returns {Promise<LifecycleEvent>}
 */
export async function sendPatch(session, streamId, body) {
  // Wall clock: compared with the status's `last_params_update_time` (epoch ms).
  const sentAt = Date.now();
  try {
    const res = await api(streamPaths(streamId).parameters, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.ok) return { type: "PATCH_RESULT", session, ok: true, status: res.status, sentAt };
    const error = await readError(res);
    return { type: "PATCH_RESULT", session, ok: false, status: res.status, message: error.message, notReady: isNotReadyBody(error.body), sentAt };
  } catch (err) {
    return { type: "PATCH_RESULT", session, ok: false, status: 0, message: reason(err) };
  }
}

/**
 * Opens the stream's status event stream (`GET …/events`, same origin: the session cookie
 * goes along): every `status` message becomes a STATUS_EVENT, every error an EVENTS_ERROR
 * (`closed`: the browser gave up on it, e.g. a 404/405 from a gateway without the route).
 * Returns the function that closes it.
 * @param {number} session
 * @param {string} url
 * @param {(event: LifecycleEvent) => void} dispatch
 * @returns {() => void}
 */
export function openStatusEvents(session, url, dispatch) {
  const source = new EventSource(url, { withCredentials: true });
  let closed = false;
  source.addEventListener("status", (e) => {
    if (closed) return;
    const msg = readStatusEvent(/** @type {MessageEvent} */ (e).data);
    if (msg) dispatch({ type: "STATUS_EVENT", session, ...msg });
  });
  source.addEventListener("error", () => {
    if (closed) return;
    dispatch({ type: "EVENTS_ERROR", session, closed: source.readyState === EventSource.CLOSED });
  });
  return () => {
    closed = true;
    source.close();
  };
}

/**
 * Ends the stream while the tab closes: a text/plain body is a "simple" request the
 * browser sends even while the page unloads.
 * @param {string} streamId
 */
export function sendEndBeacon(streamId) {
  navigator.sendBeacon("/api/daydream/streams/end", JSON.stringify({ streamId }));
}
