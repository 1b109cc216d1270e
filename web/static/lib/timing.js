// @ts-check
/**
 * Timing rules shared by the page's clients, as pure functions of the current time
 * (milliseconds, injected): the WHIP client's ICE gathering gate and connection timeout,
 * exponential backoff, warm-up statuses, bounded waits. The WHEP player's machine is
 * `whep-machine.js`. The browser classes only feed them events and arm timers at the
 * deadlines they return, so the rules are unit-testable without sleeps.
 *
 * @module timing
 */

/**
 * How long a non-trickle offer waits for ICE gathering once it has at least one
 * candidate: 1 s, like Daydream's official browser client. Host candidates arrive within
 * milliseconds; a STUN server that cannot be reached (closed network) would otherwise
 * hold the offer until the hard cap.
 */
export const GATHERING_BUDGET_MS = 1000;

/** Hard cap on ICE gathering (the spec's `iceGatheringTimeout`): the offer goes out then, whatever was gathered. */
export const ICE_GATHERING_TIMEOUT_MS = 20000;

/** The spec's `connectionTimeout`: from `connect()` to "connected". */
export const CONNECTION_TIMEOUT_MS = 45000;

/**
 * State of the "when do we send the offer" decision.
 * @typedef {object} GatherGate
 * @property {number} startedAt when `setLocalDescription` resolved
 * @property {number} budgetMs see {@link GATHERING_BUDGET_MS}
 * @property {number} capMs see {@link ICE_GATHERING_TIMEOUT_MS}
 * @property {number} candidates how many local candidates were gathered so far
 * @property {boolean} complete gathering state reached "complete"
 * @property {null | "complete" | "budget" | "cap"} sent why the offer was released (null: not yet)
 */

/**
 * @param {number} now
 * @param {{ budgetMs?: number, capMs?: number }} [options]
 * @returns {GatherGate}
 */
export function startGathering(now, options = {}) {
  return {
    startedAt: now,
    budgetMs: options.budgetMs ?? GATHERING_BUDGET_MS,
    capMs: options.capMs ?? ICE_GATHERING_TIMEOUT_MS,
    candidates: 0,
    complete: false,
    sent: null,
  };
}

/** @typedef {{ type: "CANDIDATE" } | { type: "COMPLETE" } | { type: "TICK" }} GatherEvent */

/**
 * Feeds one gathering event. The offer is released (once) when gathering completes, when
 * the budget has run out and at least one candidate exists, or at the hard cap.
 *
 * @param {GatherGate} gate
 * @param {GatherEvent} event
 * @param {number} now
 * @returns {{ gate: GatherGate, send: null | "complete" | "budget" | "cap" }}
 */
export function gatherStep(gate, event, now) {
  if (gate.sent !== null) return { gate, send: null };
  const next = { ...gate };
  if (event.type === "CANDIDATE") next.candidates += 1;
  if (event.type === "COMPLETE") next.complete = true;
  const elapsed = now - next.startedAt;
  /** @type {null | "complete" | "budget" | "cap"} */
  let send = null;
  if (next.complete) send = "complete";
  else if (next.candidates > 0 && elapsed >= next.budgetMs) send = "budget";
  else if (elapsed >= next.capMs) send = "cap";
  next.sent = send;
  return { gate: next, send };
}

/**
 * When a TICK could next release the offer (null once released).
 *
 * @param {GatherGate} gate
 * @returns {number | null}
 */
export function gatherDeadline(gate) {
  if (gate.sent !== null) return null;
  return gate.startedAt + (gate.candidates > 0 ? gate.budgetMs : gate.capMs);
}

/**
 * @param {number} startedAt when `connect()` began
 * @param {number} now
 * @param {number} [timeoutMs]
 * @returns {boolean} true once the connection timeout has elapsed
 */
export function connectTimedOut(startedAt, now, timeoutMs = CONNECTION_TIMEOUT_MS) {
  return now - startedAt >= timeoutMs;
}

/**
 * Exponential backoff: `baseMs * factor^attempt`, capped at `maxMs`.
 *
 * @param {number} attempt 0 for the first retry
 * @param {{ baseMs: number, factor?: number, maxMs: number }} policy
 * @returns {number}
 */
export function backoffDelay(attempt, policy) {
  const factor = policy.factor ?? 2;
  return Math.min(policy.maxMs, policy.baseMs * factor ** Math.max(0, attempt));
}

/**
 * Whether an HTTP status is a warm-up ("not ready yet") answer: 404, 409, 429 or 5xx.
 *
 * @param {number} status
 * @returns {boolean}
 */
export function isWarmupStatus(status) {
  return status === 404 || status === 409 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * Longest wait for the answer to a WHIP/WHEP resource DELETE before the peer is closed
 * anyway. The DELETE goes out first because a server that notices the closed peer first
 * forgets the session and answers the DELETE with 404.
 */
export const DELETE_TIMEOUT_MS = 2000;

/**
 * Longest the stream DELETE (Stop, errors) waits for the WHIP session to end first. The
 * WHIP disconnect is itself bounded by {@link DELETE_TIMEOUT_MS}; this outer bound only
 * guards against a disconnect that never settles, so the stream is always deleted.
 */
export const STREAM_DELETE_WAIT_MS = DELETE_TIMEOUT_MS + 500;

/**
 * A bounded wait: "until something is done, or at most `timeoutMs`".
 * @typedef {object} BoundedWait
 * @property {number} deadline
 * @property {null | "done" | "timeout"} released why the wait ended (null: still waiting)
 */

/**
 * @param {number} now
 * @param {number} timeoutMs
 * @returns {BoundedWait}
 */
export function startWait(now, timeoutMs) {
  return { deadline: now + Math.max(0, timeoutMs), released: null };
}

/**
 * Feeds a bounded wait: DONE (the awaited thing settled) releases it at once, TICK at or
 * after the deadline releases it as "timeout". Releases once.
 *
 * @param {BoundedWait} wait
 * @param {"DONE" | "TICK"} event
 * @param {number} now
 * @returns {{ wait: BoundedWait, release: null | "done" | "timeout" }}
 */
export function waitStep(wait, event, now) {
  if (wait.released !== null) return { wait, release: null };
  /** @type {null | "done" | "timeout"} */
  const release = event === "DONE" ? "done" : now >= wait.deadline ? "timeout" : null;
  return { wait: release === null ? wait : { ...wait, released: release }, release };
}
