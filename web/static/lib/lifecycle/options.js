// @ts-check
/**
 * The lifecycle's tunables (every timer, retry schedule and failure limit). Defaults follow the spec.
 * @module lifecycle/options
 */

/**
 * @typedef {object} LifecycleOptions
 * @property {number} countdownMs countdown before the output shows (ends early when output plays)
 * @property {number} warmupGraceMs from stream creation: status failures and "not active" are tolerated this long
 * @property {number} postPollGraceMs extra grace after the warm-up window, with one more poll
 * @property {number} pollIntervalMs status polling while warming up
 * @property {number} livePollIntervalMs status polling once live
 * @property {number} lostPollIntervalMs status polling once live while polls fail (until one succeeds)
 * @property {number} pollTimeoutMs a status poll without an answer after this long is abandoned
 *   (the shell aborts it and reports a network error), so a hung server counts as failing
 * @property {number} lostAfterFailures consecutive failed live polls (network error or 5xx) that
 *   make the page say the connection is lost
 * @property {{ baseMs: number, factor: number, maxMs: number, maxAttempts: number }} whipRetry
 *   WHIP startup retries: delay `baseMs * factor^n` (capped), at most `maxAttempts` attempts in all
 * @property {number} promptUpdatedMs how long "Prompt updated" / "Prompt applied" stays
 * @property {number} patchDebounceMs a prompt change waits this long for a later one (trailing
 *   debounce: a burst of edits sends only the last)
 * @property {number} applyTimeoutMs after a 2xx, how long "Sent — waiting for the stream" waits
 *   for the status to show the change applied (then "Prompt updated", as without a hash)
 * @property {number} clockSkewMs how much earlier than the send (wall clock) the status's
 *   `last_params_update_time` may be and still count as this update
 * @property {{ openTimeoutMs: number, silenceMs: number, maxErrors: number }} events the status
 *   event stream: its first message must come within `openTimeoutMs`, then one at least every
 *   `silenceMs` (the server sends one every 15 s); `maxErrors` errors in a row, or any error
 *   before the first message, and the page polls instead
 * @property {number} disconnectGraceMs a WHIP peer "disconnected" this long (Livepeer ends the
 *   session at once) is re-published by a new POST, like a failed one
 * @property {{ stallMs: number, attemptMs: number, budgetMs: number, steps: readonly ("whep" | "whip")[] }} heal
 *   the freeze watchdog: no output frame for `stallMs` while live starts a recovery; each step
 *   (re-subscribe WHEP, re-publish WHIP) gets `attemptMs` to bring frames back, all within
 *   `budgetMs`; then the session fails
 * @property {{ maxFailures: number, baseMs: number, factor: number, maxMs: number, warmupGraceMs: number, bare404GraceMs: number }} patch
 *   live updates: counted failures before giving up, retry backoff, the window after
 *   creation in which 409/429/5xx and "not ready" answers are warm-up (not counted), and
 *   the shorter window in which a 404 WITHOUT "not ready" in its body is warm-up too
 */

/** @type {LifecycleOptions} */
export const DEFAULT_OPTIONS = Object.freeze({
  countdownMs: 15000,
  warmupGraceMs: 60000,
  postPollGraceMs: 3000,
  pollIntervalMs: 1000,
  livePollIntervalMs: 5000,
  lostPollIntervalMs: 1000,
  lostAfterFailures: 2,
  pollTimeoutMs: 5000,
  promptUpdatedMs: 3000,
  patchDebounceMs: 150,
  applyTimeoutMs: 20000,
  clockSkewMs: 1000,
  events: Object.freeze({ openTimeoutMs: 5000, silenceMs: 35000, maxErrors: 3 }),
  disconnectGraceMs: 1000,
  heal: Object.freeze({ stallMs: 2000, attemptMs: 7000, budgetMs: 30000, steps: Object.freeze(/** @type {const} */ (["whep", "whep", "whip", "whip"])) }),
  whipRetry: Object.freeze({ baseMs: 500, factor: 2, maxMs: 8000, maxAttempts: 8 }),
  patch: Object.freeze({ maxFailures: 5, baseMs: 500, factor: 2, maxMs: 4000, warmupGraceMs: 60000, bare404GraceMs: 10000 }),
});

/**
 * @param {Partial<LifecycleOptions>} [overrides]
 * @returns {LifecycleOptions}
 */
export function resolveOptions(overrides = {}) {
  return {
    ...DEFAULT_OPTIONS,
    ...overrides,
    whipRetry: { ...DEFAULT_OPTIONS.whipRetry, ...(overrides.whipRetry ?? {}) },
    patch: { ...DEFAULT_OPTIONS.patch, ...(overrides.patch ?? {}) },
    events: { ...DEFAULT_OPTIONS.events, ...(overrides.events ?? {}) },
    heal: { ...DEFAULT_OPTIONS.heal, ...(overrides.heal ?? {}) },
  };
}
