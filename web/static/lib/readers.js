// @ts-check
/**
 * Response readers: what a gateway answer SAYS, as plain values. Every rule that interprets
 * a fetch result or a JSON body (status bodies, error bodies, the config, a create 409)
 * lives here; the lifecycle's reducers and the shell (`app.js`) ask these functions and never
 * look into bodies themselves.
 *
 * Pure module: no DOM, no fetch, no timers. Every reader accepts anything (`unknown`) and
 * never throws: a body that is not what it expects reads as "says nothing".
 *
 * Status bodies: the gateway forwards `{ success, data }` (the runner's shape: `data.state`,
 * `data.inference_status.fps`, `data.gateway_status`); a bare `data` object is accepted too.
 * {@link readStatus} is the one place that reads them, so a second upstream shape is taught
 * here and nowhere else.
 *
 * @module readers
 */

import { isWarmupStatus } from "./timing.js";

/**
 * @param {unknown} value
 * @returns {Record<string, any> | null}
 */
function obj(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? /** @type {Record<string, any>} */ (value) : null;
}

/**
 * What a status body says, in one place.
 * @typedef {object} StatusView
 * @property {boolean} active the stream is active: state ONLINE or DEGRADED_*, or inference
 *   output seen (fps > 0 or a last_output_time), or ingest bytes received; never when
 *   `success` is false
 * @property {string | null} whepUrl the upstream WHEP URL (`gateway_status.whep_url`), if any
 */

/**
 * Reads a status body (the whole `{success, data}` body or just `data`).
 * @param {unknown} body
 * @returns {StatusView}
 */
export function readStatus(body) {
  const root = obj(body);
  const data = obj(root?.data) ?? root;
  return { active: root !== null && root.success !== false && data !== null && dataIsActive(data), whepUrl: whepUrlOf(data) };
}

/** @param {Record<string, any>} data */
function dataIsActive(data) {
  const state = typeof data.state === "string" ? data.state.toUpperCase() : "";
  if (state === "ONLINE" || state.startsWith("DEGRADED")) return true;
  const inference = obj(data.inference_status);
  if (inference) {
    if (typeof inference.fps === "number" && inference.fps > 0) return true;
    const last = inference.last_output_time;
    if ((typeof last === "number" && last > 0) || (typeof last === "string" && last !== "" && last !== "0")) return true;
  }
  const peer = obj(obj(obj(obj(data.gateway_status)?.ingest_metrics)?.stats)?.peer_conn_stats);
  return Boolean(peer && typeof peer.BytesReceived === "number" && peer.BytesReceived > 0);
}

/** @param {Record<string, any> | null} data */
function whepUrlOf(data) {
  const url = obj(data?.gateway_status)?.whep_url;
  return typeof url === "string" && url !== "" ? url : null;
}

/**
 * Whether a status response says the stream is active (see {@link StatusView}).
 * @param {unknown} body
 * @returns {boolean}
 */
export function isActiveStatus(body) {
  return readStatus(body).active;
}

/**
 * The upstream WHEP URL in a status body (`data.gateway_status.whep_url`), if any.
 * @param {unknown} body
 * @returns {string | null}
 */
export function statusWhepUrl(body) {
  return readStatus(body).whepUrl;
}

/** "not ready", "not-ready", "NOT_READY", "notready" (any case). */
const NOT_READY = /not[ _-]?ready/i;

/**
 * Whether an error body says the stream is not ready yet. Looks at the gateway's
 * `error` and `message` and at the upstream body it forwards as `details`
 * (`details.error`, `details.code`, e.g. `"STREAMS/NOT_READY"`); also accepts an
 * upstream-style body (`code` at the top level). Anything else (null, text) is false.
 *
 * @param {unknown} body
 * @returns {boolean}
 */
export function isNotReadyBody(body) {
  const root = obj(body);
  if (!root) return false;
  const details = obj(root.details);
  const texts = [root.error, root.message, root.code, details?.error, details?.code];
  return texts.some((t) => typeof t === "string" && NOT_READY.test(t));
}

/**
 * Whether a failed PATCH is a warm-up answer (retried, not counted), by time since the
 * stream was created:
 * - a body saying "not ready" ({@link isNotReadyBody}), or 409/429/5xx: within `warmupGraceMs`;
 * - a bare 404 (no "not ready" in its body): only within the short `bare404GraceMs`
 *   (the spec's "short grace window after stream creation"); later it counts, as
 *   a gone stream answers 404 too;
 * - anything else (400, 405, network errors, ...): never.
 *
 * @param {{ status: number, notReady: boolean }} answer
 * @param {number} sinceCreatedMs
 * @param {{ warmupGraceMs: number, bare404GraceMs: number }} windows
 * @returns {boolean}
 */
export function isPatchWarmupFailure(answer, sinceCreatedMs, windows) {
  if (sinceCreatedMs >= windows.warmupGraceMs) return false;
  if (answer.notReady) return true;
  if (answer.status === 404) return sinceCreatedMs < windows.bare404GraceMs;
  return isWarmupStatus(answer.status);
}

/**
 * What a status poll answer says about a LIVE stream:
 * - `"ok"`: answered 2xx;
 * - `"failed"`: no answer (network error, status 0) or 5xx (the gateway's 502/504 for an
 *   unreachable or slow upstream), or a 404 whose body says "not ready";
 * - `"gone"`: 404 or 403 for our own stream (ended, or no longer owned by this session);
 * - `"neutral"`: any other answer (e.g. 429): the server is there, nothing to conclude.
 *
 * @param {{ ok: boolean, httpStatus: number, body: unknown }} answer
 * @returns {"ok" | "failed" | "gone" | "neutral"}
 */
export function livePollVerdict(answer) {
  if (answer.ok) return "ok";
  const status = answer.httpStatus;
  if (status === 0 || status >= 500) return "failed";
  if (status === 404 || status === 403) return isNotReadyBody(answer.body) ? "failed" : "gone";
  return "neutral";
}

/**
 * One line for a gateway error body (`{error, message}`): its `message`, else its `error`,
 * else `HTTP <status>`.
 *
 * @param {unknown} body the parsed body (null when it was not JSON)
 * @param {number} status
 * @returns {string}
 */
export function errorMessage(body, status) {
  const root = obj(body);
  if (root && typeof root.message === "string") return root.message;
  if (root && typeof root.error === "string") return root.error;
  return `HTTP ${status}`;
}

/**
 * The session's existing stream named by a create 409 (`activeStreamId`), if any.
 * @param {unknown} body
 * @returns {string | undefined}
 */
export function activeStreamIdOf(body) {
  const id = obj(body)?.activeStreamId;
  return typeof id === "string" ? id : undefined;
}

/** @typedef {{ configured: boolean, mode: "daydream" | "local", iframeBase: string }} DreamConfig */

/**
 * The page's view of `GET /api/daydream/config`: mode "local" or (anything else) "daydream";
 * the lvpr.tv iframe base unless the server names another. A null body is not a config
 * (throws, like reading a field of it would).
 *
 * @param {unknown} body
 * @returns {DreamConfig}
 */
export function readConfig(body) {
  if (body === null || body === undefined) throw new TypeError("the config answer is empty");
  const root = obj(body);
  const base = obj(root?.playback)?.iframeBase;
  return {
    configured: Boolean(root?.configured),
    mode: root?.mode === "local" ? "local" : "daydream",
    iframeBase: typeof base === "string" ? base : "https://lvpr.tv/",
  };
}
