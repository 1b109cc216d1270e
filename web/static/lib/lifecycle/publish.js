// @ts-check
/**
 * Publishing the camera (WHIP): the first attempt once the stream exists and the camera
 * runs; retries with exponential backoff for warm-up answers (404/409/429/5xx, network
 * errors) and peer failures, within an attempt budget and the warm-up window (measured from
 * creation, or from the last peer failure after a working connection); then the session fails.
 * A peer "disconnected" for `disconnectGraceMs` counts as failed: Livepeer ends a WHIP
 * session as soon as ICE reports "disconnected", so only a new POST (never an ICE restart)
 * brings it back. The freeze watchdog's `REPUBLISH` starts a new POST the same way.
 * @module lifecycle/publish
 */

import { backoffDelay, isWarmupStatus } from "../timing.js";
import { whipFailedMessage } from "./messages.js";
import { streamPaths } from "./stream.js";

/** @typedef {import("./types.js").Intent} Intent */

/**
 * @typedef {object} PublishSlice
 * @property {number} attempts attempts since the last working connection
 * @property {number | null} nextAt when the next retry is due
 * @property {boolean} inFlight an offer is on its way
 * @property {boolean} answered the current attempt was answered (2xx)
 * @property {boolean} connected the peer connection is up
 * @property {number | null} windowStart start of the window in which retries are allowed
 * @property {boolean} retried a retry was scheduled this session (the status then stays on "retrying")
 * @property {number | null} disconnectedUntil the connected peer reported "disconnected": a new POST then, unless it connects again (null: not disconnected)
 */

/** @returns {PublishSlice} */
export function initialPublish() {
  return { attempts: 0, nextAt: null, inFlight: false, answered: false, connected: false, windowStart: null, retried: false, disconnectedUntil: null };
}

/** @type {import("./types.js").Reducer<PublishSlice>} */
export function publish(slice, event, now, ctx) {
  const s = { ...slice };
  /** @type {Intent[]} */
  const actions = [];
  const o = ctx.options;
  /**
   * An attempt failed: retry with backoff while the budget and the window allow, else fail.
   * @param {boolean} retryable
   * @param {string} message
   */
  const failed = (retryable, message) => {
    const inWindow = s.windowStart !== null && now - s.windowStart < o.warmupGraceMs;
    if (retryable && s.attempts < o.whipRetry.maxAttempts && inWindow) {
      s.nextAt = now + backoffDelay(s.attempts - 1, o.whipRetry);
      s.retried = true;
    } else actions.push({ type: "FAIL", message: whipFailedMessage(message) });
  };
  /**
   * The working session is lost: end it (DELETE) and POST a new offer within the budget,
   * its window measured from now rather than from creation.
   * @param {string} message
   */
  const lost = (message) => {
    s.connected = false;
    s.answered = false;
    s.inFlight = false;
    s.disconnectedUntil = null;
    actions.push({ type: "WHIP_DISCONNECT" });
    if (s.attempts === 0) s.windowStart = now;
    failed(true, message);
  };
  switch (event.type) {
    case "CREATED":
      s.windowStart = now;
      break;
    case "SETTLE": {
      if (s.disconnectedUntil !== null && now >= s.disconnectedUntil) lost("Peer connection failed");
      const { id, cameraReady } = ctx.state.stream;
      if (!id || !cameraReady || s.inFlight || s.answered) break;
      if (s.nextAt !== null && now < s.nextAt) break;
      s.inFlight = true;
      s.nextAt = null;
      actions.push({ type: "WHIP_CONNECT", session: ctx.state.session, streamId: id, url: streamPaths(id).whip, attempt: s.attempts });
      s.attempts += 1;
      break;
    }
    case "WHIP_RESULT":
      s.inFlight = false;
      if (event.ok) s.answered = true;
      else failed(event.status === 0 || isWarmupStatus(event.status), event.message);
      break;
    case "WHIP_STATE":
      if (event.state === "connected") {
        s.connected = true;
        s.attempts = 0;
        s.disconnectedUntil = null;
      } else if (event.state === "disconnected") {
        if (s.connected && s.disconnectedUntil === null) s.disconnectedUntil = now + o.disconnectGraceMs;
      } else if (event.state === "failed") {
        // A peer failure after startup gets the same bounded reconnect budget.
        lost(event.error ?? "Peer connection failed");
      }
      break;
    case "REPUBLISH":
      if (s.answered || s.inFlight) lost("Peer connection failed");
      break;
    case "TEARDOWN":
      if (s.inFlight || s.answered) actions.push({ type: "WHIP_DISCONNECT" });
      return { slice: initialPublish(), actions };
  }
  return { slice: s, actions };
}

/**
 * When a retry is due, or a "disconnected" peer's grace ends (null: none).
 * @param {PublishSlice} s
 * @returns {number | null}
 */
export function publishDeadline(s) {
  const times = [s.nextAt, s.disconnectedUntil].filter(/** @returns {t is number} */ (t) => t !== null);
  return times.length ? Math.min(...times) : null;
}
