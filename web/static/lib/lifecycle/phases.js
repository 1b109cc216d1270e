// @ts-check
/**
 * The dispatcher's rules about phases: which events each phase accepts, and the status line
 * while a stream exists.
 * @module lifecycle/phases
 */

import { MESSAGES } from "./messages.js";
import { connectionLost } from "./watch.js";
import { healing } from "./heal.js";

/** @typedef {import("./types.js").LifecycleState} LifecycleState */
/** @typedef {import("./types.js").LifecycleEvent} LifecycleEvent */

/** @param {LifecycleState["phase"]} phase */
export const isRunning = (phase) => phase === "preparing" || phase === "creating" || phase === "connecting" || phase === "live";
/** A stream exists and is being published or watched. @param {LifecycleState["phase"]} phase */
export const isStreaming = (phase) => phase === "connecting" || phase === "live";

/**
 * Whether the event is for the current session and fits the phase; anything else is
 * ignored (no actions, no change).
 * @param {LifecycleState} state
 * @param {LifecycleEvent} event
 */
export function accepts(state, event) {
  if ("session" in event && typeof event.session === "number" && event.session !== state.session) return false;
  switch (event.type) {
    case "CLICK_DREAM":
      return !isRunning(state.phase);
    case "CONFIG_OK":
    case "CAMERA_OK":
      return state.phase === "preparing";
    case "CREATED":
    case "CREATE_FAILED":
    case "DELETED":
      return state.phase === "creating";
    case "WHIP_RESULT":
    case "WHIP_STATE":
    case "STATUS_RESULT":
    case "STATUS_EVENT":
    case "EVENTS_ERROR":
    case "PLAYING":
    case "PLAYER_FAILED":
      return isStreaming(state.phase);
    case "FRAME":
      return state.phase === "live";
    case "PATCH_RESULT":
      return state.updates.inFlight !== null;
    case "STOP":
      return state.phase !== "idle";
    case "TICK":
    case "PROMPT_CHANGED":
    case "VISIBILITY":
      return true;
    default:
      // CONFIG_FAILED, CAMERA_FAILED, CAMERA_READY, PAGEHIDE, ERROR
      return isRunning(state.phase);
  }
}

/**
 * The status line while a stream exists.
 * @param {LifecycleState} s
 * @param {import("./options.js").LifecycleOptions} o
 */
export function streamingStatus(s, o) {
  if (s.phase === "live") {
    // The output stopped moving and is being restarted.
    if (healing(s.heal)) return MESSAGES.STALLED;
    // The camera's WHIP session failed, dropped ("disconnected": Livepeer has ended it) and
    // is being re-established, or the server stopped answering status: say so rather than
    // "live" over a frozen or black output. (The WHIP/peer failure handling decides when to give up.)
    const up = s.publish.answered && s.publish.disconnectedUntil === null && !connectionLost(s, o);
    return up ? MESSAGES.LIVE : MESSAGES.RECONNECTING;
  }
  if (s.output.countdownDone) return MESSAGES.WAITING_OUTPUT;
  if (s.publish.answered) return MESSAGES.WARMING_UP;
  // Once a startup retry happened the line stays on "retrying" (no flip back to
  // "Connecting…" for every attempt: the status is an aria-live region).
  return s.publish.retried ? MESSAGES.WHIP_RETRY : MESSAGES.CONNECTING;
}
