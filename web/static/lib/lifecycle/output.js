// @ts-check
/**
 * What the user sees of the stream: the 15 s countdown (ended early as soon as output
 * plays), the WHEP player (started once a WHEP output is known: local mode, a
 * `Livepeer-Playback-URL`, or `whep_url` in a status body), and which output is on screen
 * (the WHEP `<video>`, or Daydream's iframe player when there is no WHEP output or the
 * player gave up).
 * @module lifecycle/output
 */

import { readStatus } from "../readers.js";
import { MESSAGES } from "./messages.js";
import { streamPaths } from "./stream.js";

/** @typedef {import("./types.js").Intent} Intent */

/**
 * @typedef {object} OutputSlice
 * @property {number | null} countdownEndsAt
 * @property {boolean} countdownDone
 * @property {number | null} countdownShown seconds last shown
 * @property {string | null} whepUrl gateway WHEP path once a WHEP output is known
 * @property {boolean} playerStarted
 * @property {boolean} playerFailed the WHEP player gave up (output falls back to the iframe, or the session fails)
 * @property {"whep" | "iframe" | null} revealed which output is on screen
 * @property {boolean} playing output frames are playing in the page
 */

/** @returns {OutputSlice} */
export function initialOutput() {
  return { countdownEndsAt: null, countdownDone: false, countdownShown: null, whepUrl: null, playerStarted: false, playerFailed: false, revealed: null, playing: false };
}

/** @type {import("./types.js").Reducer<OutputSlice>} */
export function output(slice, event, now, ctx) {
  const s = { ...slice };
  /** @type {Intent[]} */
  const actions = [];
  const { stream } = ctx.state;
  const reveal = () => {
    const kind = !s.playerFailed && (s.whepUrl || stream.mode === "local") ? "whep" : "iframe";
    // Never from the (better) WHEP video back to the iframe, unless the player gave up.
    if (s.revealed === kind || (s.revealed === "whep" && kind === "iframe" && !s.playerFailed)) return;
    s.revealed = kind;
    actions.push({ type: "REVEAL_OUTPUT", kind, playbackId: stream.playbackId });
  };
  const endCountdown = () => {
    if (s.countdownDone) return;
    s.countdownDone = true;
    if (s.countdownShown !== null) {
      s.countdownShown = null;
      actions.push({ type: "COUNTDOWN", seconds: null });
    }
    reveal();
  };
  /** The WHEP output is known (once): start the player. */
  const knowWhep = () => {
    if (s.whepUrl || !stream.id) return;
    const url = streamPaths(stream.id).whep;
    s.whepUrl = url;
    if (!s.playerStarted) {
      s.playerStarted = true;
      actions.push({ type: "START_PLAYER", session: ctx.state.session, url });
    }
  };
  switch (event.type) {
    case "CREATED":
      s.countdownEndsAt = now + ctx.options.countdownMs;
      s.countdownShown = Math.ceil(ctx.options.countdownMs / 1000);
      actions.push({ type: "COUNTDOWN", seconds: s.countdownShown });
      break;
    case "TICK":
      if (s.countdownDone || s.countdownEndsAt === null) break;
      if (now >= s.countdownEndsAt) endCountdown();
      else {
        const seconds = Math.ceil((s.countdownEndsAt - now) / 1000);
        if (seconds !== s.countdownShown) {
          s.countdownShown = seconds;
          actions.push({ type: "COUNTDOWN", seconds });
        }
      }
      break;
    case "WHIP_RESULT":
      if (event.ok && (stream.mode === "local" || event.playbackUrl)) knowWhep();
      break;
    case "STATUS_RESULT":
      if (event.ok && readStatus(event.body).whepUrl) knowWhep();
      break;
    case "PLAYING":
      s.playing = true;
      endCountdown();
      reveal();
      break;
    case "PLAYER_FAILED":
      // The WHEP player gave up (output never appeared within its budget, or its
      // connection kept failing). Daydream mode with a playback id: Daydream's own player
      // (iframe) takes over and the stream keeps running. Otherwise nothing can show the
      // output: the session fails with the player's message (Retry starts afresh).
      if (stream.mode === "local" || !stream.playbackId) return { slice: s, actions: [{ type: "FAIL", message: event.message }] };
      s.playerFailed = true;
      s.playing = false;
      actions.push({ type: "STOP_PLAYER" }, { type: "SHOW", target: "notice", message: MESSAGES.PLAYER_FALLBACK });
      if (s.countdownDone) reveal();
      break;
    case "TEARDOWN":
      if (s.playerStarted || s.revealed) actions.push({ type: "STOP_PLAYER" });
      if (s.revealed) actions.push({ type: "HIDE_OUTPUT" });
      if (s.countdownShown !== null) actions.push({ type: "COUNTDOWN", seconds: null });
      return { slice: initialOutput(), actions };
  }
  return { slice: s, actions };
}

/**
 * When the countdown shows its next second, or ends (null: not running).
 * @param {OutputSlice} s
 * @returns {number | null}
 */
export function outputDeadline(s) {
  if (s.countdownDone || s.countdownEndsAt === null) return null;
  // `ceil((end - now) / 1000)` drops below the shown value once `end - now <= (shown - 1) s`.
  return s.countdownShown !== null && s.countdownShown > 1 ? s.countdownEndsAt - (s.countdownShown - 1) * 1000 : s.countdownEndsAt;
}
