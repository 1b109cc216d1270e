// @ts-check
/**
 * The WHEP player's retry and restart rules, as a pure machine of the current time
 * (milliseconds, injected): `whepStep(state, event, now) -> { state, actions }` and
 * `whepDeadline(state)`. The player (`whep-player.js`) only executes the actions and arms
 * one timer at the deadline, so the rules are unit-testable without sleeps.
 *
 * @module whep-machine
 */

import { backoffDelay } from "./timing.js";

/** Longest wait between two WHEP attempts. */
export const WHEP_MAX_DELAY_MS = 60000;

/**
 * Delay before WHEP attempt number `attempt` (0-based) while the output does not exist yet,
 * like Daydream's player: 0, then 200 ms ten times, then 500 * 2^k up to 60 s.
 *
 * @param {number} attempt
 * @returns {number}
 */
export function whepRetryDelay(attempt) {
  if (attempt <= 0) return 0;
  if (attempt <= 10) return 200;
  return Math.min(WHEP_MAX_DELAY_MS, 500 * 2 ** (attempt - 11));
}

/**
 * Whether a WHEP answer status means "not there yet, try again" (404 until the output
 * exists, 429 too many viewers, 5xx, or 0 = network error).
 *
 * @param {number} status
 * @returns {boolean}
 */
export function whepShouldRetry(status) {
  return status === 0 || status === 404 || status === 429 || status >= 500;
}

/** How often the WHEP player checks whether decoded frames are on screen. */
export const PLAYING_CHECK_MS = 100;

/**
 * How long the WHEP player keeps retrying an output that is not there yet (404, 429,
 * 5xx, network errors) within one negotiation before it gives up; Daydream's player gives
 * up after about 60 s of 404s. The last attempt is moved to the budget's end when the
 * schedule ({@link whepRetryDelay}) would overshoot it.
 */
export const WHEP_RETRY_BUDGET_MS = 60000;

/**
 * Longest wait for the answer to one WHEP POST (like the official client's 10 s request
 * timeout); then that attempt counts as a network error (status 0, retried) and its late
 * answer is ignored.
 */
export const WHEP_REQUEST_TIMEOUT_MS = 10000;

/** Restarts (fresh peer, fresh negotiation) after a failed WHEP connection before giving up. */
export const WHEP_MAX_RESTARTS = 3;

/** Delay before WHEP restart n (0-based): 1 s, 2 s, 4 s (capped at 8 s). */
export const WHEP_RESTART_BACKOFF = Object.freeze({ baseMs: 1000, factor: 2, maxMs: 8000 });

/**
 * From an applied WHEP answer to decoded frames on screen: longer than this counts as a
 * failed connection (restart). A browser whose ICE never completes would otherwise wait forever.
 */
export const WHEP_PLAY_TIMEOUT_MS = 20000;

/**
 * A connection that played this long before failing was healthy: its failure starts the
 * restart count afresh (only consecutive restarts count toward {@link WHEP_MAX_RESTARTS}).
 */
export const WHEP_STABLE_MS = 30000;

/** Why the WHEP player gave up (shown by the page). */
export const WHEP_MESSAGES = Object.freeze({
  /** @param {number} budgetMs */
  noOutput: (budgetMs) => `Dream output did not become available within ${Math.round(budgetMs / 1000)} s`,
  /**
   * @param {number} restarts
   * @param {string} reason the last failure
   */
  keepsFailing: (restarts, reason) => `Dream output connection failed: ${reason} (gave up after ${restarts} restarts)`,
  /**
   * @param {number} status
   * @param {string} [detail]
   */
  rejected: (status, detail) => `WHEP playback failed: ${status}${detail ? ` (${detail})` : ""}`,
  /** @param {number} ms */
  noFrames: (ms) => `no frames within ${Math.round(ms / 1000)} s of the answer`,
  PEER_FAILED: "peer connection failed",
});

/**
 * @typedef {object} WhepPolicy
 * @property {number} budgetMs see {@link WHEP_RETRY_BUDGET_MS}
 * @property {number} requestTimeoutMs see {@link WHEP_REQUEST_TIMEOUT_MS}
 * @property {number} maxRestarts see {@link WHEP_MAX_RESTARTS}
 * @property {{ baseMs: number, factor: number, maxMs: number }} restartBackoff see {@link WHEP_RESTART_BACKOFF}
 * @property {number} playTimeoutMs see {@link WHEP_PLAY_TIMEOUT_MS}
 * @property {number} stableMs see {@link WHEP_STABLE_MS}
 */

/** @type {WhepPolicy} */
export const WHEP_POLICY = Object.freeze({
  budgetMs: WHEP_RETRY_BUDGET_MS,
  requestTimeoutMs: WHEP_REQUEST_TIMEOUT_MS,
  maxRestarts: WHEP_MAX_RESTARTS,
  restartBackoff: WHEP_RESTART_BACKOFF,
  playTimeoutMs: WHEP_PLAY_TIMEOUT_MS,
  stableMs: WHEP_STABLE_MS,
});

/**
 * The WHEP player's retry/restart state.
 * - idle -> (START) offering: the shell builds a fresh peer and its offer
 * - offering -> (OFFER_READY) waiting/posting: POSTs follow {@link whepRetryDelay} within the budget
 * - posting -> (ANSWER 2xx) connecting -> (PLAYING) playing; an answer that does not come
 *   within the request timeout counts as a network error
 * - a connection failure (or no frames in time) -> restarting (backoff) -> offering, or gave-up
 * @typedef {object} WhepState
 * @property {"idle" | "offering" | "waiting" | "posting" | "connecting" | "playing" | "restarting" | "gave-up" | "stopped"} phase
 * @property {number} attempts POSTs sent in this negotiation
 * @property {number | null} budgetStart when this negotiation's first POST was due
 * @property {number} restarts consecutive restarts so far
 * @property {number | null} playingSince when the current connection started playing
 * @property {number | null} nextAt when a TICK has something to do (null: nothing scheduled)
 * @property {string | null} error why it gave up
 * @property {WhepPolicy} policy
 */

/**
 * `ANSWER.attempt` is the `POST` action's `attempt`: answers of other attempts are ignored.
 * @typedef {{ type: "START" } | { type: "OFFER_READY" } | { type: "ANSWER", attempt: number, status: number, detail?: string }
 *   | { type: "PLAYING" } | { type: "PEER_FAILED", reason?: string } | { type: "TICK" } | { type: "STOP" }} WhepEvent
 */

/**
 * What the shell does: NEW_PEER (close any old peer, build a new one and its offer, then
 * feed OFFER_READY), POST (send the offer, feed ANSWER), APPLY (apply that attempt's 2xx
 * answer, feed PLAYING once frames show, or PEER_FAILED), CLOSE_PEER, PLAYING (tell the
 * page), GIVE_UP (close, report the message).
 * @typedef {{ type: "NEW_PEER" } | { type: "POST", attempt: number } | { type: "APPLY", attempt: number } | { type: "CLOSE_PEER" }
 *   | { type: "PLAYING" } | { type: "GIVE_UP", message: string }} WhepAction
 */

/**
 * @param {Partial<WhepPolicy>} [policy]
 * @returns {WhepState}
 */
export function initialWhepState(policy = {}) {
  return {
    phase: "idle",
    attempts: 0,
    budgetStart: null,
    restarts: 0,
    playingSince: null,
    nextAt: null,
    error: null,
    policy: { ...WHEP_POLICY, ...policy },
  };
}

/**
 * One transition of the WHEP player. Events that do not fit the current phase (late
 * answers of an abandoned negotiation, anything after STOP or giving up) change nothing.
 *
 * @param {WhepState} state
 * @param {WhepEvent} event
 * @param {number} now
 * @returns {{ state: WhepState, actions: WhepAction[] }}
 */
export function whepStep(state, event, now) {
  const s = { ...state };
  /** @type {WhepAction[]} */
  const actions = [];
  const p = s.policy;
  /** @param {string} message */
  const giveUp = (message) => {
    s.phase = "gave-up";
    s.nextAt = null;
    s.error = message;
    actions.push({ type: "GIVE_UP", message });
  };
  const postIfDue = () => {
    if (s.phase === "waiting" && s.nextAt !== null && now >= s.nextAt) {
      s.phase = "posting";
      s.nextAt = now + p.requestTimeoutMs;
      actions.push({ type: "POST", attempt: s.attempts });
      s.attempts += 1;
    }
  };
  /** A retryable answer (or none): next attempt on the schedule, or give up once the budget is spent. */
  const retryLater = () => {
    const end = (s.budgetStart ?? now) + p.budgetMs;
    if (now >= end) giveUp(WHEP_MESSAGES.noOutput(p.budgetMs));
    else {
      s.phase = "waiting";
      s.nextAt = Math.min(now + whepRetryDelay(s.attempts), end);
    }
  };
  /** @param {string} reason */
  const connectionFailed = (reason) => {
    if (s.playingSince !== null && now - s.playingSince >= p.stableMs) s.restarts = 0;
    s.playingSince = null;
    if (s.restarts >= p.maxRestarts) {
      giveUp(WHEP_MESSAGES.keepsFailing(s.restarts, reason));
      return;
    }
    actions.push({ type: "CLOSE_PEER" });
    s.phase = "restarting";
    s.nextAt = now + backoffDelay(s.restarts, p.restartBackoff);
    s.restarts += 1;
  };
  const live = s.phase !== "idle" && s.phase !== "gave-up" && s.phase !== "stopped";

  switch (event.type) {
    case "START":
      if (s.phase !== "idle") break;
      s.phase = "offering";
      actions.push({ type: "NEW_PEER" });
      break;
    case "OFFER_READY":
      if (s.phase !== "offering") break;
      s.phase = "waiting";
      s.attempts = 0;
      s.budgetStart = now + whepRetryDelay(0);
      s.nextAt = s.budgetStart;
      postIfDue();
      break;
    case "ANSWER": {
      if (s.phase !== "posting" || event.attempt !== s.attempts - 1) break;
      if (event.status >= 200 && event.status < 300) {
        s.phase = "connecting";
        s.nextAt = now + p.playTimeoutMs;
        actions.push({ type: "APPLY", attempt: event.attempt });
      } else if (!whepShouldRetry(event.status)) {
        giveUp(WHEP_MESSAGES.rejected(event.status, event.detail));
      } else {
        retryLater();
      }
      break;
    }
    case "PLAYING":
      if (s.phase !== "connecting") break;
      s.phase = "playing";
      s.playingSince = now;
      s.nextAt = null;
      actions.push({ type: "PLAYING" });
      break;
    case "PEER_FAILED":
      if (!live || s.phase === "restarting") break;
      connectionFailed(event.reason ?? WHEP_MESSAGES.PEER_FAILED);
      break;
    case "TICK":
      if (s.nextAt === null || now < s.nextAt) break;
      if (s.phase === "waiting") postIfDue();
      else if (s.phase === "posting") retryLater();
      else if (s.phase === "restarting") {
        s.phase = "offering";
        s.nextAt = null;
        actions.push({ type: "NEW_PEER" });
      } else if (s.phase === "connecting") connectionFailed(WHEP_MESSAGES.noFrames(p.playTimeoutMs));
      break;
    case "STOP":
      s.phase = "stopped";
      s.nextAt = null;
      break;
  }
  return { state: s, actions };
}

/**
 * When the shell should send the next TICK (null: nothing scheduled).
 * @param {WhepState} state
 * @returns {number | null}
 */
export function whepDeadline(state) {
  return state.nextAt;
}
