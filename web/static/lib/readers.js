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
 * `data.input_status.fps`, `data.inference_status.fps`, `data.gateway_status`; or the public
 * reference's: `data.inference_status.input_fps` / `output_fps`, no `state`, no
 * `input_status`); a bare `data` object is accepted too. {@link readStatus} is the one place
 * that reads them.
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
 * What a status body says, in one place. Both upstream shapes are read:
 * - the runner's (what Daydream's runner and our engine send): `state`, `input_status.fps`,
 *   `inference_status.fps`;
 * - the public reference's: no `state`, no `input_status`, `inference_status.input_fps` /
 *   `output_fps`.
 * Either may come wrapped as `{success, data}` or bare.
 * @typedef {object} StatusView
 * @property {boolean} active the stream is active. Runner shape: state ONLINE or DEGRADED_*,
 *   or inference output seen (fps > 0 or a last_output_time), or ingest bytes received.
 *   Public shape: output fps > 0 and a recent last_output_time (see {@link readStatus}).
 *   Never when `success` is false
 * @property {string | null} whepUrl the upstream WHEP URL (`gateway_status.whep_url`), if any
 * @property {"runner" | "public" | null} shape which shape the body is in (null: not a status)
 * @property {string | null} state the runner's `state` (upper case), null in the public shape
 * @property {number | null} inputFps frames per second the stream receives
 * @property {number | null} outputFps frames per second the stream produces
 * @property {number | null} lastOutputTime epoch ms of the last output frame
 * @property {string | null} paramsHash `inference_status.last_params_hash`: changes when the
 *   stream has applied new parameters
 * @property {number | null} paramsUpdateTime `inference_status.last_params_update_time` (epoch ms)
 * @property {string | null} lastPrompt `inference_status.last_params.prompt` (a plain string prompt)
 * @property {number | null} restartTime `inference_status.last_restart_time` (epoch ms)
 */

/** How old a public-shape `last_output_time` may be (against the body's `timestamp` or the caller's clock) and still count as live. */
export const RECENT_OUTPUT_MS = 5000;

/** @type {StatusView} */
const NOTHING = Object.freeze({ active: false, whepUrl: null, shape: null, state: null, inputFps: null, outputFps: null, lastOutputTime: null, paramsHash: null, paramsUpdateTime: null, lastPrompt: null, restartTime: null });

/**
 * Reads a status body (the whole `{success, data}` body or just `data`), in either shape.
 * In the public shape "recent" is judged against the body's `timestamp`, else against
 * `nowEpochMs` when given; with neither, output fps > 0 and any last_output_time count.
 * @param {unknown} body
 * @param {number} [nowEpochMs] wall-clock time the body was received (epoch ms)
 * @returns {StatusView}
 */
export function readStatus(body, nowEpochMs) {
  const root = obj(body);
  const data = obj(root?.data) ?? root;
  if (!root || !data) return NOTHING;
  const inference = obj(data.inference_status);
  const isPublic = data.state === undefined && data.input_status === undefined && inference !== null && ("output_fps" in inference || "input_fps" in inference);
  const view = {
    whepUrl: whepUrlOf(data),
    shape: /** @type {"runner" | "public"} */ (isPublic ? "public" : "runner"),
    state: typeof data.state === "string" ? data.state.toUpperCase() : null,
    inputFps: num(isPublic ? inference?.input_fps : obj(data.input_status)?.fps),
    outputFps: num(isPublic ? inference?.output_fps : inference?.fps),
    lastOutputTime: time(inference?.last_output_time),
    paramsHash: typeof inference?.last_params_hash === "string" && inference.last_params_hash !== "" ? inference.last_params_hash : null,
    paramsUpdateTime: time(inference?.last_params_update_time),
    lastPrompt: typeof obj(inference?.last_params)?.prompt === "string" ? obj(inference?.last_params)?.prompt : null,
    restartTime: time(inference?.last_restart_time),
  };
  const reference = time(data.timestamp) ?? nowEpochMs ?? null;
  const active = root.success !== false && (isPublic ? publicIsActive(view, reference) : dataIsActive(data));
  return { active, ...view };
}

/**
 * Public shape: producing output (fps > 0) and the last output frame is recent.
 * @param {{ outputFps: number | null, lastOutputTime: number | null }} view
 * @param {number | null} reference
 */
function publicIsActive(view, reference) {
  if (view.outputFps === null || view.outputFps <= 0 || view.lastOutputTime === null) return false;
  return reference === null || reference - view.lastOutputTime <= RECENT_OUTPUT_MS;
}

/** A finite number, else null. @param {unknown} v */
function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/**
 * A time as epoch ms: a positive number, a numeric string, or an ISO 8601 date; else null.
 * @param {unknown} v
 */
function time(v) {
  if (typeof v === "number") return Number.isFinite(v) && v > 0 ? v : null;
  if (typeof v !== "string" || v === "" || v === "0") return null;
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : Date.parse(v);
  return Number.isFinite(n) && n > 0 ? n : null;
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

/** @typedef {"creating" | "warming" | "live" | "degraded" | "reconnecting" | "ended" | "error"} StreamPhase */

const PHASES = ["creating", "warming", "live", "degraded", "reconnecting", "ended", "error"];

/**
 * One message of the status event stream (`GET …/events`, `event: status`): its `data` is
 * `{"phase": …, "reason": "<plain words>", "status": <the status route's body>}`. An unknown
 * phase reads as null; data that is not such an object reads as null (the message is ignored).
 * @param {unknown} data the message's data (text)
 * @returns {{ phase: StreamPhase | null, reason: string | null, status: unknown } | null}
 */
export function readStatusEvent(data) {
  if (typeof data !== "string") return null;
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    return null;
  }
  const root = obj(parsed);
  if (!root) return null;
  const phase = typeof root.phase === "string" && PHASES.includes(root.phase) ? /** @type {StreamPhase} */ (root.phase) : null;
  return { phase, reason: typeof root.reason === "string" && root.reason !== "" ? root.reason : null, status: root.status ?? null };
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
