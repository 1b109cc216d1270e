// @ts-check
/**
 * The lifecycle's vocabulary (types only): the state tree, the events the shell feeds in,
 * the actions it executes, and the contract every reducer follows.
 *
 * A reducer owns one slice of the state and is a pure function
 * `(slice, event, now, ctx) -> { slice, actions }`: it may READ the whole current state
 * (`ctx.state`, read-only) and the options, and it returns its new slice plus what should
 * happen, in order. Besides the shell's actions it may return two requests that the
 * dispatcher (`../lifecycle.js`) carries out: `SHOW` for the status/notice lines (the
 * dispatcher owns them and drops a SHOW that changes nothing) and `FAIL` (the session ends
 * with that message: every slice tears down, nothing after it in the same step runs).
 *
 * @module lifecycle/types
 */

export {};

/** @typedef {"idle" | "preparing" | "creating" | "connecting" | "live" | "error"} Phase */
/** @typedef {"daydream" | "local"} Mode */

/**
 * The whole state: the dispatcher's own fields plus one slice per concern.
 * @typedef {object} LifecycleState
 * @property {Phase} phase
 * @property {number} session incremented by every start; async results carry it back
 * @property {string} status status line
 * @property {string | null} notice secondary line (live-update problems, player fallback)
 * @property {import("./stream.js").StreamSlice} stream config, camera, create (409), the stream's identity
 * @property {import("./publish.js").PublishSlice} publish WHIP publishing and its retries
 * @property {import("./watch.js").WatchSlice} watch status polling and the grace windows
 * @property {import("./output.js").OutputSlice} output countdown, WHEP player, what is on screen
 * @property {import("./updates.js").UpdatesSlice} updates live prompt updates (PATCH) and their feedback line
 * @property {import("./heal.js").HealSlice} heal the freeze watchdog and its recovery attempts
 */

/**
 * Events the shell feeds in.
 * @typedef {{ type: "CLICK_DREAM" }
 *   | { type: "CONFIG_OK", session: number, configured: boolean, mode: Mode }
 *   | { type: "CONFIG_FAILED", session: number, message: string }
 *   | { type: "CAMERA_OK", session: number }
 *   | { type: "CAMERA_READY", session: number }
 *   | { type: "CAMERA_FAILED", session: number, message: string }
 *   | { type: "CREATED", session: number, stream: { id: string, output_playback_id?: string, params?: { model_id?: string } } }
 *   | { type: "CREATE_FAILED", session: number, status: number, message: string, activeStreamId?: string }
 *   | { type: "DELETED", session: number, id: string }
 *   | { type: "TICK" }
 *   | { type: "WHIP_RESULT", session: number, ok: true, playbackUrl?: string | null }
 *   | { type: "WHIP_RESULT", session: number, ok: false, status: number, message: string }
 *   | { type: "WHIP_STATE", session: number, state: "connecting" | "connected" | "failed" | "disconnected" | "closed", error?: string }
 *   | { type: "STATUS_RESULT", session: number, ok: boolean, httpStatus: number, body: unknown }
 *   | { type: "PLAYING", session: number }
 *   | { type: "PLAYER_FAILED", session: number, message: string }
 *   | { type: "PROMPT_CHANGED", prompt: string }
 *   | { type: "STATUS_EVENT", session: number, phase: import("../readers.js").StreamPhase | null, reason: string | null, status: unknown }
 *   | { type: "EVENTS_ERROR", session: number, closed: boolean }
 *   | { type: "FRAME", session: number }
 *   | { type: "VISIBILITY", visible: boolean }
 *   | { type: "PATCH_RESULT", session: number, ok: boolean, status: number, message?: string, notReady?: boolean, sentAt?: number }
 *   | { type: "STOP" }
 *   | { type: "PAGEHIDE" }
 *   | { type: "ERROR", session?: number, message: string }} LifecycleEvent
 */

/**
 * Events the dispatcher sends to reducers (never from the shell):
 * - `CREATE`: config and camera are fine, the stream is requested now;
 * - `SETTLE`: after every accepted event while a stream exists (start what is due);
 * - `WENT_LIVE`: the phase just became "live";
 * - `TEARDOWN`: the session ends (`end`: "delete" for Stop and errors, "beacon" for tab close);
 *   the reducer returns its fresh slice and its cleanup actions;
 * - `REPUBLISH`: the freeze watchdog asks for a new WHIP session (a new POST).
 * @typedef {{ type: "CREATE" } | { type: "SETTLE" } | { type: "WENT_LIVE" } | { type: "TEARDOWN", end: "delete" | "beacon" } | { type: "REPUBLISH" }} InternalEvent
 */

/** @typedef {LifecycleEvent | InternalEvent} ReducerEvent */

/**
 * Actions the shell executes.
 * @typedef {{ type: "CHECK_CONFIG", session: number }
 *   | { type: "CAMERA_PRECHECK", session: number }
 *   | { type: "START_CAMERA", session: number }
 *   | { type: "STOP_CAMERA" }
 *   | { type: "CREATE_STREAM", session: number, payload: { pipeline: string, params: Record<string, unknown> } }
 *   | { type: "DELETE_STREAM", session: number, id: string }
 *   | { type: "WHIP_CONNECT", session: number, streamId: string, url: string, attempt: number }
 *   | { type: "WHIP_DISCONNECT" }
 *   | { type: "POLL_STATUS", session: number, streamId: string, timeoutMs: number }
 *   | { type: "OPEN_EVENTS", session: number, streamId: string, url: string }
 *   | { type: "CLOSE_EVENTS" }
 *   | { type: "START_PLAYER", session: number, url: string }
 *   | { type: "STOP_PLAYER" }
 *   | { type: "REVEAL_OUTPUT", kind: "whep" | "iframe", playbackId: string | null }
 *   | { type: "HIDE_OUTPUT" }
 *   | { type: "COUNTDOWN", seconds: number | null }
 *   | { type: "SEND_PATCH", session: number, streamId: string, body: { pipeline: string, params: Record<string, unknown> } }
 *   | { type: "SHOW", target: "status" | "notice", message: string | null }
 *   | { type: "SHOW", target: "update", message: string | null, clearAt: number | null }
 *   | { type: "BEACON_END", streamId: string }} LifecycleAction
 */

/** What a reducer returns besides shell actions: the session fails with `message`. @typedef {{ type: "FAIL", message: string }} FailRequest */

/** A reducer asks the dispatcher for a new WHIP session (routed to `publish` as `REPUBLISH`). @typedef {{ type: "REPUBLISH" }} RepublishRequest */

/** @typedef {LifecycleAction | FailRequest | RepublishRequest} Intent */

/** @typedef {{ state: Readonly<LifecycleState>, options: import("./options.js").LifecycleOptions }} Ctx */

/**
 * @template S
 * @typedef {(slice: S, event: ReducerEvent, now: number, ctx: Ctx) => { slice: S, actions: Intent[] }} Reducer
 */
