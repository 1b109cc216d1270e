// @ts-check
/**
 * Live prompt updates: a changed prompt is PATCHed (minimal payload, the stream's model
 * repeated) only once the countdown is over and the stream is active, one at a time, the
 * newest prompt after each success. Warm-up answers (see `../readers.js`
 * `isPatchWarmupFailure`) are retried with backoff and not counted; 5 counted failures
 * disable updates until the next start ("Live updates unavailable…", word for word).
 * Feedback on its own line: "Updating prompt…", then "Prompt updated" for 3 s.
 * @module lifecycle/updates
 */

import { promptUpdatePayload } from "../params.js";
import { isPatchWarmupFailure } from "../readers.js";
import { backoffDelay } from "../timing.js";
import { MESSAGES } from "./messages.js";

/** @typedef {import("./types.js").Intent} Intent */

/**
 * @typedef {object} UpdatesSlice
 * @property {string} prompt wanted prompt (persona + base; kept across sessions)
 * @property {string | null} appliedPrompt prompt the stream runs with
 * @property {string | null} inFlight prompt of the PATCH on its way
 * @property {number} failures consecutive counted failures
 * @property {number} retries warm-up retries since the last success
 * @property {number} nextAt no PATCH before this time (backoff)
 * @property {boolean} disabled given up until the next start
 * @property {string | null} line the feedback line ("Updating prompt…", "Prompt updated")
 * @property {number | null} clearAt when a TICK clears the feedback line
 */

/**
 * @param {string} prompt
 * @returns {UpdatesSlice}
 */
export function initialUpdates(prompt) {
  return { prompt, appliedPrompt: null, inFlight: null, failures: 0, retries: 0, nextAt: 0, disabled: false, line: null, clearAt: null };
}

/**
 * Whether live updates may be sent: countdown over and the stream active.
 * @param {Readonly<import("./types.js").LifecycleState>} state
 */
export function patchGateOpen(state) {
  return state.output.countdownDone && (state.watch.statusActive || state.output.playing || state.publish.connected);
}

/** @type {import("./types.js").Reducer<UpdatesSlice>} */
export function updates(slice, event, now, ctx) {
  const s = { ...slice };
  /** @type {Intent[]} */
  const actions = [];
  const o = ctx.options.patch;
  /**
   * The feedback line (it never touches the notice, which keeps "Live updates
   * unavailable…" word for word). `clearAt`: when a TICK clears it.
   * @param {string | null} message
   * @param {number | null} [clearAt]
   */
  const show = (message, clearAt = null) => {
    s.clearAt = message === null ? null : clearAt;
    if (s.line !== message || clearAt !== null) {
      s.line = message;
      actions.push({ type: "SHOW", target: "update", message, clearAt: s.clearAt });
    }
  };
  switch (event.type) {
    case "CREATE":
      s.appliedPrompt = s.prompt;
      break;
    case "TICK":
      if (s.clearAt !== null && now >= s.clearAt) show(null);
      break;
    case "PROMPT_CHANGED":
      s.prompt = event.prompt;
      break;
    case "PATCH_RESULT": {
      const sent = s.inFlight;
      s.inFlight = null;
      if (event.ok) {
        s.appliedPrompt = sent;
        s.failures = 0;
        s.retries = 0;
        s.nextAt = now;
        // Only when nothing newer waits (otherwise the next PATCH keeps "Updating prompt…").
        if (s.appliedPrompt === s.prompt) show(MESSAGES.PROMPT_UPDATED, now + ctx.options.promptUpdatedMs);
        break;
      }
      const createdAt = ctx.state.stream.createdAt;
      const since = createdAt === null ? Infinity : now - createdAt;
      if (isPatchWarmupFailure({ status: event.status, notReady: event.notReady === true }, since, o)) {
        s.nextAt = now + backoffDelay(s.retries, o);
        s.retries += 1;
      } else {
        s.failures += 1;
        if (s.failures >= o.maxFailures) {
          s.disabled = true;
          actions.push({ type: "SHOW", target: "notice", message: MESSAGES.LIVE_UPDATES_UNAVAILABLE });
          show(null);
        } else {
          s.nextAt = now + backoffDelay(s.failures - 1, o);
        }
      }
      break;
    }
    case "SETTLE": {
      const { stream } = ctx.state;
      if (stream.id && !s.disabled && s.inFlight === null && s.appliedPrompt !== s.prompt && patchGateOpen(ctx.state) && now >= s.nextAt) {
        s.inFlight = s.prompt;
        actions.push({ type: "SEND_PATCH", session: ctx.state.session, streamId: stream.id, body: promptUpdatePayload(stream.modelId, s.prompt) });
        show(MESSAGES.UPDATING_PROMPT);
      }
      // Changed back to the prompt the stream already runs with while a retry was pending:
      // nothing is being updated any more.
      if (s.line === MESSAGES.UPDATING_PROMPT && s.inFlight === null && s.appliedPrompt === s.prompt) show(null);
      break;
    }
    case "TEARDOWN":
      show(null);
      return { slice: initialUpdates(s.prompt), actions };
  }
  return { slice: s, actions };
}

/**
 * When a TICK has something to do: the feedback line to clear, a PATCH due once its
 * backoff is over. Only while the gate is open: it opens on an event (status, first
 * frame, WHIP connected) or at the countdown's end, itself a deadline (`output.js`).
 * @param {Readonly<import("./types.js").LifecycleState>} state
 * @returns {number | null}
 */
export function updatesDeadline(state) {
  const s = state.updates;
  /** @type {number[]} */
  const times = [];
  if (s.clearAt !== null) times.push(s.clearAt);
  if (state.stream.id && s.inFlight === null && !s.disabled && s.appliedPrompt !== s.prompt && patchGateOpen(state)) times.push(s.nextAt);
  return times.length ? Math.min(...times) : null;
}
