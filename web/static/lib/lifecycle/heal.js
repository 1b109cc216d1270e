// @ts-check
/**
 * The freeze watchdog and self-healing. While live with the WHEP output on screen (and the
 * page visible, and the camera's WHIP session up), the shell reports decoded output frames
 * (`FRAME`, from `requestVideoFrameCallback`, at most every few hundred ms). No frame for
 * `heal.stallMs` starts a recovery: "Output stalled — reconnecting…", then one step after
 * the other (`heal.steps`: re-subscribe WHEP, twice, then re-publish WHIP by a new POST and
 * re-subscribe, twice), each given `heal.attemptMs` to bring a frame back, all within
 * `heal.budgetMs`; a frame ends the recovery; when the steps or the budget run out the session
 * fails with a clear message (Retry starts afresh).
 *
 * The watch window opens (`armedAt`) whenever watching becomes possible, so time spent
 * hidden, reconnecting the camera or before the first frame never counts as a stall.
 * @module lifecycle/heal
 */

import { MESSAGES } from "./messages.js";

/** @typedef {import("./types.js").Intent} Intent */

/**
 * @typedef {object} HealSlice
 * @property {boolean} visible the page is visible (frames are only painted, and counted, then)
 * @property {number | null} armedAt watching since then (null: not watching)
 * @property {number | null} lastFrameAt the last reported output frame
 * @property {number | null} stallAt no frame by then is a stall: `stallMs` after the last frame
 *   or the start of watching, whichever is later (null: not watching)
 * @property {number | null} episodeStart the recovery in progress started then (null: none)
 * @property {number} step recovery steps taken in this episode
 * @property {number | null} stepEndsAt the current step has until then to bring a frame back
 */

/** @param {boolean} [visible] @returns {HealSlice} */
export function initialHeal(visible = true) {
  return { visible, armedAt: null, lastFrameAt: null, stallAt: null, episodeStart: null, step: 0, stepEndsAt: null };
}

/**
 * Whether output frames are expected now: live, the WHEP video on screen and playing, the
 * page visible, the camera's session answered and not disconnected.
 * @param {Readonly<import("./types.js").LifecycleState>} state
 */
export function watchingFrames(state) {
  const { phase, output, publish, heal } = state;
  return phase === "live" && output.revealed === "whep" && output.playing && output.whepUrl !== null && heal.visible && publish.answered && publish.disconnectedUntil === null;
}

/** A recovery is in progress (the status line says so). @param {HealSlice} s */
export const healing = (s) => s.episodeStart !== null;

/** @type {import("./types.js").Reducer<HealSlice>} */
export function heal(slice, event, now, ctx) {
  const s = { ...slice };
  /** @type {Intent[]} */
  const actions = [];
  const o = ctx.options.heal;
  const { output, session } = ctx.state;
  const rearm = () => {
    const at = s.armedAt === null ? null : Math.max(s.armedAt, s.lastFrameAt ?? -Infinity) + o.stallMs;
    // An infinite `stallMs` turns the watchdog off.
    s.stallAt = at !== null && Number.isFinite(at) ? at : null;
  };
  /** The next recovery step, or the end of the session when none is left. */
  const nextStep = () => {
    const kind = o.steps[s.step];
    const budgetEnd = (s.episodeStart ?? now) + o.budgetMs;
    if (kind === undefined || now >= budgetEnd || !output.whepUrl) {
      actions.push({ type: "FAIL", message: MESSAGES.STALL_FAILED });
      return;
    }
    s.step += 1;
    s.stepEndsAt = Math.min(now + o.attemptMs, budgetEnd);
    if (kind === "whip") actions.push({ type: "REPUBLISH" });
    actions.push({ type: "STOP_PLAYER" }, { type: "START_PLAYER", session, url: output.whepUrl });
  };
  switch (event.type) {
    case "FRAME":
      s.lastFrameAt = now;
      rearm();
      if (healing(s)) {
        s.episodeStart = null;
        s.step = 0;
        s.stepEndsAt = null;
      }
      break;
    case "VISIBILITY":
      s.visible = event.visible;
      break;
    case "SETTLE": {
      // A recovery runs its steps whatever happens meanwhile (its own re-publish takes the
      // camera's session down for a moment).
      if (healing(s)) break;
      const watching = watchingFrames({ ...ctx.state, heal: s });
      if (!watching) s.armedAt = null;
      else if (s.armedAt === null) s.armedAt = now;
      rearm();
      break;
    }
    case "TICK": {
      if (healing(s)) {
        if (s.stepEndsAt !== null && now >= s.stepEndsAt) nextStep();
        break;
      }
      if (s.stallAt !== null && now >= s.stallAt) {
        s.episodeStart = now;
        s.step = 0;
        nextStep();
      }
      break;
    }
    case "TEARDOWN":
      return { slice: initialHeal(s.visible), actions };
  }
  return { slice: s, actions };
}

/**
 * When a TICK has something to do: the current step's end, or the stall (null: none).
 * @param {HealSlice} s
 * @returns {number | null}
 */
export function healDeadline(s) {
  return healing(s) ? s.stepEndsAt : s.stallAt;
}
