// @ts-check
/**
 * Every timing rule of the WHIP client and the WHEP player, as pure functions of the
 * current time (milliseconds, injected). The browser classes only feed them events and
 * arm timers at the deadlines they return, so the rules are unit-testable without sleeps.
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

/**
 * Whether an HTTP status is a warm-up ("not ready yet") answer: 404, 409, 429 or 5xx.
 *
 * @param {number} status
 * @returns {boolean}
 */
export function isWarmupStatus(status) {
  return status === 404 || status === 409 || status === 429 || (status >= 500 && status <= 599);
}
