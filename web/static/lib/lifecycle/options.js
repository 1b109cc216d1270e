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
 * @property {number} promptUpdatedMs how long "Prompt updated" stays after a live update succeeded
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
  };
}
