// @ts-check
/**
 * The browser side of the pure waits in `timing.js`: a clock (injectable), ICE gathering
 * before a non-trickle offer (`gatherStep`) and a bounded wait for a promise (`waitStep`).
 * Each arms one timer at the machine's deadline and feeds it the events.
 *
 * @module waits
 */

import { gatherDeadline, gatherStep, startGathering, startWait, waitStep } from "./timing.js";

/**
 * Resolves when a non-trickle offer may be sent, following `timing.js` `gatherStep`:
 * "complete" (gathering finished), "budget" (budget over with a candidate), "cap" (hard
 * cap), or "aborted". Call it BEFORE `setLocalDescription` so no candidate is missed.
 *
 * @param {RTCPeerConnection} pc
 * @param {{ budgetMs: number, capMs: number }} limits
 * @param {Clock} clock
 * @param {AbortSignal} [signal]
 * @returns {Promise<string>}
 */
export function waitForGathering(pc, limits, clock, signal) {
  return new Promise((resolve) => {
    let gate = startGathering(clock.now(), limits);
    /** @type {unknown} */
    let timer = null;
    const done = () => {
      if (timer !== null) clock.clearTimeout(timer);
      pc.removeEventListener("icecandidate", onCandidate);
      pc.removeEventListener("icegatheringstatechange", onGathering);
      signal?.removeEventListener("abort", onAbort);
    };
    /** @param {import("./timing.js").GatherEvent} event */
    const feed = (event) => {
      const r = gatherStep(gate, event, clock.now());
      gate = r.gate;
      if (r.send) {
        done();
        resolve(r.send);
        return;
      }
      if (timer !== null) clock.clearTimeout(timer);
      const deadline = gatherDeadline(gate);
      timer = deadline === null ? null : clock.setTimeout(() => feed({ type: "TICK" }), Math.max(0, deadline - clock.now()));
    };
    /** @param {RTCPeerConnectionIceEvent} e */
    const onCandidate = (e) => feed(e.candidate && e.candidate.candidate ? { type: "CANDIDATE" } : { type: "COMPLETE" });
    const onGathering = () => {
      if (pc.iceGatheringState === "complete") feed({ type: "COMPLETE" });
    };
    const onAbort = () => {
      done();
      resolve("aborted");
    };
    if (signal?.aborted) {
      resolve("aborted");
      return;
    }
    pc.addEventListener("icecandidate", onCandidate);
    pc.addEventListener("icegatheringstatechange", onGathering);
    signal?.addEventListener("abort", onAbort);
    feed({ type: "TICK" });
  });
}

/**
 * @typedef {{ now: () => number, setTimeout: (fn: () => void, ms: number) => unknown, clearTimeout: (id: unknown) => void }} Clock
 */

/** The browser's clock. @type {Clock} */
export const BROWSER_CLOCK = Object.freeze({
  now: () => (typeof performance !== "undefined" ? performance.now() : Date.now()),
  setTimeout: (/** @type {() => void} */ fn, /** @type {number} */ ms) => setTimeout(fn, ms),
  clearTimeout: (/** @type {any} */ id) => clearTimeout(id),
});

/**
 * Waits for `promise` to settle (either way), at most `timeoutMs`, following `timing.js`
 * `waitStep`. Resolves "done" or "timeout"; never rejects.
 *
 * @param {Promise<unknown>} promise
 * @param {number} timeoutMs
 * @param {Clock} [clock]
 * @returns {Promise<"done" | "timeout">}
 */
export function waitBounded(promise, timeoutMs, clock = BROWSER_CLOCK) {
  return new Promise((resolve) => {
    let wait = startWait(clock.now(), timeoutMs);
    /** @type {unknown} */
    let timer = null;
    /** @param {"DONE" | "TICK"} event */
    const feed = (event) => {
      const r = waitStep(wait, event, clock.now());
      wait = r.wait;
      if (r.release) {
        if (timer !== null) clock.clearTimeout(timer);
        timer = null;
        resolve(r.release);
      } else if (event === "TICK" || timer === null) {
        timer = clock.setTimeout(() => feed("TICK"), Math.max(0, wait.deadline - clock.now()));
      }
    };
    feed("TICK");
    promise.then(
      () => feed("DONE"),
      () => feed("DONE"),
    );
  });
}
