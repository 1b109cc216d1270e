// @ts-check
/**
 * The Dream lifecycle as a PURE state machine: `step(state, event, now) -> { state, actions }`.
 *
 * It owns every timer, retry, grace window and failure counter of a Dream session. Each
 * concern is a reducer over its own slice (`lifecycle/*.js`, contract in `lifecycle/types.js`):
 * - `stream`: config check -> camera pre-check -> create (409: delete the session's old
 *   stream, retry once) -> the stream's identity -> DELETE / end beacon;
 * - `publish`: WHIP publish with startup retries (404/409/429/5xx, exponential backoff,
 *   attempt budget and warm-up window), peer failures;
 * - `watch`: the status event stream, or polling when it cannot be had (warm-up grace
 *   ~60 s, post-poll grace ~3 s), live verdicts (2 failed polls: "connection lost" and 1 s
 *   polling until one succeeds; a 404/403 for our stream, or a pushed "ended", ends the session);
 * - `output`: countdown (15 s, ended early as soon as output plays), WHEP player, what is
 *   on screen (WHEP video or Daydream's iframe);
 * - `updates`: live prompt updates, latest-wins (debounced, one PATCH in flight, only once
 *   active; warm-up failures not counted; 5 counted failures disable updates until restart;
 *   "Updating prompt…", "Sent — waiting for the stream", "Prompt applied");
 * - `heal`: the freeze watchdog (no output frame for 2 s while live: re-subscribe WHEP,
 *   then re-publish WHIP, within a budget, then fail).
 * This file is the dispatcher: it owns the phase, the session number, the status and notice
 * lines, routes each event to the reducers in a fixed order, settles what is due after it
 * (WHIP attempt, going live, the status line, a PATCH), and tears every slice down on
 * Stop, errors and tab close. Response bodies are read by `readers.js`.
 *
 * Time is the `now` argument (ms); there are no timers here. The shell (`app.js`) sleeps
 * until {@link nextDeadline}, sends TICK then, and executes the returned actions with real
 * fetch/camera/WebRTC calls, reporting the outcome as events. Async results carry the
 * `session` of the action that started them; results of an older session are ignored
 * (a late CREATED is deleted).
 *
 * @module lifecycle
 */

import { MESSAGES } from "./lifecycle/messages.js";
import { DEFAULT_OPTIONS, resolveOptions } from "./lifecycle/options.js";
import { initialStream, stream } from "./lifecycle/stream.js";
import { initialPublish, publish, publishDeadline } from "./lifecycle/publish.js";
import { initialWatch, watch, watchDeadline } from "./lifecycle/watch.js";
import { initialOutput, output, outputDeadline } from "./lifecycle/output.js";
import { initialUpdates, updates, updatesDeadline } from "./lifecycle/updates.js";
import { healDeadline, heal, initialHeal } from "./lifecycle/heal.js";
import { accepts, isStreaming, streamingStatus } from "./lifecycle/phases.js";

export { MESSAGES, whipFailedMessage } from "./lifecycle/messages.js";
export { DEFAULT_OPTIONS, resolveOptions } from "./lifecycle/options.js";
export { streamPaths } from "./lifecycle/stream.js";

/** @typedef {import("./lifecycle/options.js").LifecycleOptions} LifecycleOptions */
/** @typedef {import("./lifecycle/types.js").LifecycleState} LifecycleState */
/** @typedef {import("./lifecycle/types.js").LifecycleEvent} LifecycleEvent */
/** @typedef {import("./lifecycle/types.js").LifecycleAction} LifecycleAction */
/** @typedef {import("./lifecycle/types.js").ReducerEvent} ReducerEvent */
/** @typedef {"stream" | "publish" | "watch" | "output" | "updates" | "heal"} SliceKey */

/** The reducer of each slice. */
const REDUCERS = Object.freeze({ stream, publish, watch, output, updates, heal });

/**
 * @param {string} prompt the initial wanted prompt
 * @returns {LifecycleState}
 */
export function initialState(prompt) {
  return {
    phase: "idle",
    session: 0,
    status: MESSAGES.IDLE,
    notice: null,
    stream: initialStream(),
    publish: initialPublish(),
    watch: initialWatch(),
    output: initialOutput(),
    updates: initialUpdates(prompt),
    heal: initialHeal(),
  };
}

/**
 * One step in progress.
 * @typedef {{ s: LifecycleState, now: number, o: LifecycleOptions, actions: LifecycleAction[], failed: boolean }} Run
 */

/**
 * Runs one slice's reducer and carries out what it returns, in order.
 * @param {Run} run
 * @param {SliceKey} key
 * @param {ReducerEvent} event
 */
function reduce(run, key, event) {
  if (run.failed) return;
  const reducer = /** @type {import("./lifecycle/types.js").Reducer<any>} */ (REDUCERS[key]);
  const result = reducer(run.s[key], event, run.now, { state: run.s, options: run.o });
  run.s = { ...run.s, [key]: result.slice };
  for (const intent of result.actions) {
    if (intent.type === "FAIL") {
      fail(run, intent.message);
      return;
    }
    if (intent.type === "REPUBLISH") reduce(run, "publish", { type: "REPUBLISH" });
    else emit(run, intent);
  }
}

/**
 * Queues an action. The status and notice lines are the dispatcher's: a SHOW for them that
 * changes nothing is dropped.
 * @param {Run} run
 * @param {LifecycleAction} action
 */
function emit(run, action) {
  if (action.type === "SHOW" && (action.target === "status" || action.target === "notice")) {
    const { target, message } = action;
    if (run.s[target] === message) return;
    run.s = { ...run.s, [target]: message };
  }
  run.actions.push(action);
}

/**
 * @param {Run} run
 * @param {string | null} message
 */
const showStatus = (run, message) => emit(run, { type: "SHOW", target: "status", message });
/**
 * @param {Run} run
 * @param {string | null} message
 */
const showNotice = (run, message) => emit(run, { type: "SHOW", target: "notice", message });

/** @param {Run} run @param {LifecycleState["phase"]} phase */
function enter(run, phase) {
  run.s = { ...run.s, phase };
}

/**
 * Tears the session down (player, output, countdown, WHIP, stream, camera, lines) and
 * starts every slice afresh (keeping the mode and the wanted prompt).
 * @param {Run} run
 * @param {"delete" | "beacon"} end "delete" (Stop, errors) or "beacon" (tab closing)
 */
function teardown(run, end) {
  const event = /** @type {const} */ ({ type: "TEARDOWN", end });
  reduce(run, "output", event);
  reduce(run, "publish", event);
  reduce(run, "stream", event);
  // The notice is about this session (live updates, player fallback): it ends with it.
  showNotice(run, null);
  reduce(run, "updates", event);
  reduce(run, "watch", event);
  reduce(run, "heal", event);
}

/**
 * The session ends with `message`; nothing else runs in this step.
 * @param {Run} run
 * @param {string} message
 */
function fail(run, message) {
  teardown(run, "delete");
  enter(run, "error");
  showStatus(run, message);
  run.failed = true;
}

/** @param {Run} run */
function tick(run) {
  if (!isStreaming(run.s.phase)) return;
  reduce(run, "updates", { type: "TICK" });
  reduce(run, "output", { type: "TICK" });
  reduce(run, "watch", { type: "TICK" });
  reduce(run, "heal", { type: "TICK" });
}

/**
 * After every accepted event while a stream exists: a WHIP attempt that is due, going live
 * (countdown over and output visible), the status line, a PATCH that is due.
 * @param {Run} run
 */
function settle(run) {
  if (run.failed || !isStreaming(run.s.phase)) return;
  reduce(run, "publish", { type: "SETTLE" });
  const { output: out, watch: w } = run.s;
  if (out.countdownDone && (out.playing || w.statusActive) && run.s.phase !== "live") {
    enter(run, "live");
    reduce(run, "watch", { type: "WENT_LIVE" });
  }
  reduce(run, "heal", { type: "SETTLE" });
  showStatus(run, streamingStatus(run.s, run.o));
  reduce(run, "updates", { type: "SETTLE" });
}

/**
 * Routes an accepted event to the reducers of the concerns it touches, in order.
 * @param {Run} run
 * @param {LifecycleEvent} event
 */
function route(run, event) {
  switch (event.type) {
    case "CLICK_DREAM": {
      const prev = run.s;
      run.s = { ...initialState(prev.updates.prompt), session: prev.session + 1, status: prev.status, notice: prev.notice, stream: initialStream(prev.stream.mode), heal: initialHeal(prev.heal.visible) };
      enter(run, "preparing");
      showStatus(run, MESSAGES.PREPARING);
      showNotice(run, null);
      reduce(run, "stream", event);
      break;
    }
    case "CONFIG_OK":
    case "CAMERA_OK": {
      reduce(run, "stream", event);
      if (run.failed || !run.s.stream.configOk || !run.s.stream.cameraOk) break;
      enter(run, "creating");
      showStatus(run, MESSAGES.CREATING);
      reduce(run, "updates", { type: "CREATE" });
      reduce(run, "stream", { type: "CREATE" });
      break;
    }
    case "CONFIG_FAILED":
    case "CAMERA_FAILED":
    case "ERROR":
      fail(run, event.message);
      break;
    case "CREATED":
      enter(run, "connecting");
      for (const key of /** @type {const} */ (["stream", "publish", "watch", "output"])) reduce(run, key, event);
      break;
    case "TICK":
      tick(run);
      break;
    case "WHIP_RESULT":
      reduce(run, "publish", event);
      if (event.ok) {
        reduce(run, "watch", event);
        reduce(run, "output", event);
        tick(run);
      }
      break;
    case "STATUS_RESULT":
    case "STATUS_EVENT":
      reduce(run, "watch", event);
      reduce(run, "output", event);
      reduce(run, "updates", event);
      break;
    case "EVENTS_ERROR":
      reduce(run, "watch", event);
      break;
    case "FRAME":
    case "VISIBILITY":
      reduce(run, "heal", event);
      break;
    case "CAMERA_READY":
    case "CREATE_FAILED":
    case "DELETED":
      reduce(run, "stream", event);
      break;
    case "WHIP_STATE":
      reduce(run, "publish", event);
      break;
    case "PLAYING":
    case "PLAYER_FAILED":
      reduce(run, "output", event);
      break;
    case "PROMPT_CHANGED":
      reduce(run, "updates", event);
      break;
    case "PATCH_RESULT":
      reduce(run, "updates", event);
      reduce(run, "watch", event);
      break;
    case "STOP": {
      const wasError = run.s.phase === "error";
      teardown(run, "delete");
      enter(run, "idle");
      showStatus(run, wasError ? MESSAGES.IDLE : MESSAGES.STOPPED);
      break;
    }
    case "PAGEHIDE":
      teardown(run, "beacon");
      enter(run, "idle");
      break;
  }
}

/**
 * One transition. Never throws; unknown or stale events give no actions.
 *
 * @param {LifecycleState} state
 * @param {LifecycleEvent} event
 * @param {number} now current time in ms
 * @param {LifecycleOptions} [options]
 * @returns {{ state: LifecycleState, actions: LifecycleAction[] }}
 */
export function step(state, event, now, options = DEFAULT_OPTIONS) {
  if (!accepts(state, event)) {
    // Late answer for a session that was stopped: do not leave a paid stream running.
    if (event.type === "CREATED" && event.stream && typeof event.stream.id === "string") {
      return { state, actions: [{ type: "DELETE_STREAM", session: event.session, id: event.stream.id }] };
    }
    return { state, actions: [] };
  }
  /** @type {Run} */
  const run = { s: state, now, o: options, actions: [], failed: false };
  route(run, event);
  settle(run);
  return { state: run.s, actions: run.actions };
}

/**
 * Earliest time at which a TICK produces something; null when nothing is scheduled. Exact:
 * a TICK at that time always changes the state so that the next deadline is later (or
 * null), so a shell that sleeps until it never spins.
 *
 * @param {LifecycleState} s
 * @returns {number | null}
 */
export function nextDeadline(s) {
  const times = [outputDeadline(s.output), publishDeadline(s.publish), watchDeadline(s), updatesDeadline(s), healDeadline(s.heal)].filter(/** @returns {t is number} */ (t) => t !== null);
  return times.length ? Math.min(...times) : null;
}

/**
 * How long the shell sleeps before the next TICK: whole milliseconds, rounded up (a timer
 * that fires before the deadline would wake for nothing), never negative; null: no TICK needed.
 *
 * @param {LifecycleState} s
 * @param {number} now
 * @returns {number | null}
 */
export function tickDelay(s, now) {
  const deadline = nextDeadline(s);
  return deadline === null ? null : Math.max(0, Math.ceil(deadline - now));
}

/**
 * Object wrapper around {@link step}.
 *
 * @param {{ prompt: string, options?: Partial<LifecycleOptions> }} init
 */
export function createLifecycle(init) {
  const options = resolveOptions(init.options);
  let state = initialState(init.prompt);
  return {
    /** Current state (read-only snapshot). */
    get state() {
      return state;
    },
    options,
    /**
     * @param {LifecycleEvent} event
     * @param {number} now
     * @returns {LifecycleAction[]}
     */
    handle(event, now) {
      const result = step(state, event, now, options);
      state = result.state;
      return result.actions;
    },
  };
}
