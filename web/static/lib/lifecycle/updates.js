// @ts-check
/**
 * Live prompt updates, latest-wins: a changed prompt waits `patchDebounceMs` for a later
 * change (a burst of edits sends only the last), then is PATCHed (minimal payload, the
 * stream's model repeated) once the countdown is over and the stream is active, at most one
 * PATCH in flight, the newest prompt after each answer. A change that would reload the
 * pipeline (`../params.js` `planUpdate`) is announced before it is sent. Warm-up answers (see
 * `../readers.js` `isPatchWarmupFailure`) are retried with backoff and not counted; 5 counted
 * failures disable updates until the next start ("Live updates unavailable…", word for word).
 *
 * Feedback on its own line: "Updating prompt…" while the PATCH is in flight; after a 2xx,
 * "Sent — waiting for the stream" until the status shows the change applied (its
 * `last_params_hash` differs from the one seen before the send and its
 * `last_params_update_time` is not older than the send, or its `last_params.prompt` is the
 * prompt sent), then "Prompt applied" for 3 s. An upstream whose status has no hash: "Prompt
 * updated" after the 2xx, as does a confirmation that does not come within `applyTimeoutMs`.
 * @module lifecycle/updates
 */

import { planUpdate } from "../params.js";
import { isPatchWarmupFailure, readStatus } from "../readers.js";
import { backoffDelay } from "../timing.js";
import { MESSAGES } from "./messages.js";

/** @typedef {import("./types.js").Intent} Intent */

/**
 * A 2xx update the status has not confirmed yet.
 * @typedef {{ prompt: string, hashBefore: string | null, sentAt: number | null, until: number }} Awaiting
 */

/**
 * @typedef {object} UpdatesSlice
 * @property {string} prompt wanted prompt (persona + base; kept across sessions)
 * @property {string | null} appliedPrompt prompt the stream runs with (as far as the PATCHes say)
 * @property {string | null} inFlight prompt of the PATCH on its way
 * @property {string | null} hashBefore the status's params hash when the PATCH in flight was sent
 * @property {Awaiting | null} awaiting a 2xx update waiting for the status to show it
 * @property {number} quietAt no PATCH before this time: the last change's debounce
 * @property {number} failures consecutive counted failures
 * @property {number} retries warm-up retries since the last success
 * @property {number} nextAt no PATCH before this time (backoff)
 * @property {boolean} disabled given up until the next start
 * @property {string | null} line the feedback line
 * @property {number | null} clearAt when a TICK clears the feedback line
 */

/**
 * @param {string} prompt
 * @returns {UpdatesSlice}
 */
export function initialUpdates(prompt) {
  return { prompt, appliedPrompt: null, inFlight: null, hashBefore: null, awaiting: null, quietAt: 0, failures: 0, retries: 0, nextAt: 0, disabled: false, line: null, clearAt: null };
}

/**
 * Whether live updates may be sent: countdown over and the stream active.
 * @param {Readonly<import("./types.js").LifecycleState>} state
 */
export function patchGateOpen(state) {
  return state.output.countdownDone && (state.watch.statusActive || state.output.playing || state.publish.connected);
}

/**
 * Whether a status shows the awaited update applied.
 * @param {Awaiting} a
 * @param {import("../readers.js").StatusView} view
 * @param {number} skewMs
 */
export function showsApplied(a, view, skewMs) {
  if (view.lastPrompt !== null && view.lastPrompt === a.prompt) return true;
  if (view.paramsHash === null || view.paramsHash === a.hashBefore) return false;
  return view.paramsUpdateTime === null || a.sentAt === null || view.paramsUpdateTime >= a.sentAt - skewMs;
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
  const done = (/** @type {string} */ message) => show(message, now + ctx.options.promptUpdatedMs);
  /** @param {import("../readers.js").StatusView} view */
  const confirm = (view) => {
    if (s.awaiting === null) return;
    if (!showsApplied(s.awaiting, view, ctx.options.clockSkewMs)) return;
    s.awaiting = null;
    if (s.inFlight === null && s.appliedPrompt === s.prompt) done(MESSAGES.PROMPT_APPLIED);
  };
  switch (event.type) {
    case "CREATE":
      s.appliedPrompt = s.prompt;
      break;
    case "TICK":
      if (s.awaiting !== null && now >= s.awaiting.until) {
        // Accepted (2xx) but never confirmed by the status: say what is known.
        s.awaiting = null;
        if (s.inFlight === null && s.appliedPrompt === s.prompt) done(MESSAGES.PROMPT_UPDATED);
      } else if (s.clearAt !== null && now >= s.clearAt) show(null);
      break;
    case "PROMPT_CHANGED":
      s.prompt = event.prompt;
      s.quietAt = now + ctx.options.patchDebounceMs;
      break;
    case "STATUS_RESULT":
      if (event.ok) confirm(readStatus(event.body));
      break;
    case "STATUS_EVENT":
      confirm(readStatus(event.status));
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
        if (sent === null || s.appliedPrompt !== s.prompt) break;
        const view = ctx.state.watch.view;
        if (view?.paramsHash) {
          s.awaiting = { prompt: sent, hashBefore: s.hashBefore, sentAt: event.sentAt ?? null, until: now + ctx.options.applyTimeoutMs };
          show(MESSAGES.PROMPT_SENT);
          // The status seen since the send may already show it.
          if (view.paramsHash !== s.hashBefore) confirm(view);
        } else done(MESSAGES.PROMPT_UPDATED);
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
      if (stream.id && !s.disabled && s.inFlight === null && s.appliedPrompt !== s.prompt && patchGateOpen(ctx.state) && now >= s.nextAt && now >= s.quietAt) {
        const plan = planUpdate({ model_id: stream.modelId, prompt: s.appliedPrompt }, { model_id: stream.modelId, prompt: s.prompt });
        s.inFlight = s.prompt;
        s.hashBefore = ctx.state.watch.view?.paramsHash ?? null;
        s.awaiting = null;
        // A reload costs the picture for a while: say so before it goes out.
        if (plan.reload) actions.push({ type: "SHOW", target: "notice", message: MESSAGES.RELOAD_NOTICE });
        actions.push({ type: "SEND_PATCH", session: ctx.state.session, streamId: stream.id, body: plan.body });
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
 * When a TICK has something to do: the feedback line to clear, an unconfirmed update to give
 * up on, a PATCH due once its debounce and backoff are over. The PATCH only while the gate is
 * open: it opens on an event (status, first frame, WHIP connected) or at the countdown's end,
 * itself a deadline (`output.js`).
 * @param {Readonly<import("./types.js").LifecycleState>} state
 * @returns {number | null}
 */
export function updatesDeadline(state) {
  const s = state.updates;
  /** @type {number[]} */
  const times = [];
  if (s.awaiting !== null) times.push(s.awaiting.until);
  else if (s.clearAt !== null) times.push(s.clearAt);
  if (state.stream.id && s.inFlight === null && !s.disabled && s.appliedPrompt !== s.prompt && patchGateOpen(state)) times.push(Math.max(s.nextAt, s.quietAt));
  return times.length ? Math.min(...times) : null;
}
