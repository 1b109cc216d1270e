// @ts-check
/**
 * The Dream lifecycle as a PURE state machine: `step(state, event, now) -> { state, actions }`.
 *
 * It owns every timer, retry, grace window and failure counter of a Dream session:
 * config check -> camera pre-check -> create (409: delete the session's old stream, retry
 * once) -> countdown (15 s, ended early as soon as output plays) -> WHIP publish with
 * startup retries (404/409/429/5xx, exponential backoff, attempt budget and warm-up window)
 * -> status polling (warm-up grace ~60 s, post-poll grace ~3 s) -> live (2 failed polls:
 * "connection lost" and 1 s polling until one succeeds; a 404/403 for our stream ends the
 * session); live prompt updates (PATCH only once active; warm-up failures not counted;
 * 5 counted failures disable updates until restart; "Updating prompt…" / "Prompt updated"
 * feedback); stop, errors and tab close.
 *
 * Time is the `now` argument (ms); there are no timers here. The shell (`app.js`) sends
 * TICK regularly and executes the returned actions with real fetch/camera/WebRTC calls,
 * reporting the outcome as events. Async results carry the `session` of the action that
 * started them; results of an older session are ignored (a late CREATED is deleted).
 *
 * @module lifecycle
 */

import { promptUpdatePayload, createPayload, DEFAULT_MODEL_ID } from "./params.js";
import { backoffDelay, isWarmupStatus } from "./timing.js";

/** Messages shown by the page. `LIVE_UPDATES_UNAVAILABLE` is quoted by the spec word for word. */
export const MESSAGES = Object.freeze({
  IDLE: "Ready to Dream",
  PREPARING: "Checking camera…",
  CREATING: "Creating your Dream stream…",
  CONNECTING: "Connecting to Dream…",
  WARMING_UP: "Dream is warming up…",
  WHIP_RETRY: "Dream is warming up — retrying the connection…",
  WAITING_OUTPUT: "Waiting for the first Dream frames…",
  LIVE: "Dream is live",
  RECONNECTING: "Connection lost — reconnecting…",
  STREAM_ENDED: "Dream stream ended on the server",
  STOPPED: "Dream stopped",
  NOT_CONFIGURED: "Dream is not configured on this server (no Daydream API key).",
  NOT_ACTIVE: "Dream did not become active. Please try again.",
  UPDATING_PROMPT: "Updating prompt…",
  PROMPT_UPDATED: "Prompt updated",
  LIVE_UPDATES_UNAVAILABLE: "Live updates unavailable — changes will apply on restart",
  PLAYER_FALLBACK: "Direct playback failed — showing Daydream's player instead",
});

/**
 * The status line when publishing (WHIP) gives up; `reason` is the WHIP client's own message
 * (the spec's error table, e.g. "WHIP offer failed: 502"), kept word for word.
 * @param {string} reason
 */
export const whipFailedMessage = (reason) => `Could not connect to Dream: ${reason}`;

/** How often the shell sends TICK (every deadline here is met to within this). */
export const TICK_INTERVAL_MS = 100;

/**
 * Tunables. Defaults follow the spec.
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

/** @typedef {"idle" | "preparing" | "creating" | "connecting" | "live" | "error"} Phase */
/** @typedef {"daydream" | "local"} Mode */

/**
 * @typedef {object} LifecycleState
 * @property {Phase} phase
 * @property {number} session incremented by every start; async results carry it back
 * @property {Mode | null} mode
 * @property {boolean} configOk
 * @property {boolean} cameraOk camera pre-check passed
 * @property {boolean} cameraReady capture stream running
 * @property {string | null} streamId
 * @property {string} modelId
 * @property {string | null} playbackId output_playback_id (iframe playback)
 * @property {number | null} createdAt
 * @property {string | null} replacing id of the old stream being deleted after a 409
 * @property {boolean} replaced a 409 was already handled this session
 * @property {number | null} countdownEndsAt
 * @property {boolean} countdownDone
 * @property {number | null} countdownShown seconds last shown
 * @property {{ attempts: number, nextAt: number | null, inFlight: boolean, answered: boolean, connected: boolean, windowStart: number | null, retried: boolean }} whip
 *   WHIP publishing: attempts since the last success, next retry time, the start of the
 *   window in which retries are allowed (creation, or the last peer failure), and whether
 *   a retry has been scheduled this session (the status then stays on "retrying")
 * @property {string | null} whepUrl gateway WHEP path once a WHEP output is known
 * @property {boolean} playerStarted
 * @property {boolean} playerFailed the WHEP player gave up (output falls back to the iframe, or the session fails)
 * @property {"whep" | "iframe" | null} revealed which output is on screen
 * @property {boolean} statusActive the status endpoint reported an active stream
 * @property {boolean} playing output frames are playing in the page
 * @property {number | null} nextPollAt
 * @property {boolean} pollInFlight
 * @property {number} pollFailures consecutive failed status polls while live (network error or 5xx)
 * @property {number | null} postGraceEndsAt
 * @property {string} prompt wanted prompt (persona + base)
 * @property {string | null} appliedPrompt prompt the stream runs with
 * @property {{ inFlight: string | null, failures: number, retries: number, nextAt: number, disabled: boolean }} patch
 * @property {string} status status line
 * @property {string | null} notice secondary line (live-update problems, player fallback)
 * @property {string | null} update live prompt update feedback ("Updating prompt…", "Prompt updated")
 * @property {number | null} updateClearAt when the update feedback is cleared (TICK)
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
 *   | { type: "PATCH_RESULT", session: number, ok: boolean, status: number, message?: string, notReady?: boolean }
 *   | { type: "STOP" }
 *   | { type: "PAGEHIDE" }
 *   | { type: "ERROR", session?: number, message: string }} LifecycleEvent
 */

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
 *   | { type: "START_PLAYER", session: number, url: string }
 *   | { type: "STOP_PLAYER" }
 *   | { type: "REVEAL_OUTPUT", kind: "whep" | "iframe", playbackId: string | null }
 *   | { type: "HIDE_OUTPUT" }
 *   | { type: "COUNTDOWN", seconds: number | null }
 *   | { type: "SEND_PATCH", session: number, streamId: string, body: { pipeline: string, params: { model_id: string, prompt: string } } }
 *   | { type: "SHOW", target: "status" | "notice", message: string | null }
 *   | { type: "SHOW", target: "update", message: string | null, clearAt: number | null }
 *   | { type: "BEACON_END", streamId: string }} LifecycleAction
 */

/**
 * Gateway paths for a stream.
 * @param {string} id
 */
export function streamPaths(id) {
  const base = `/api/daydream/streams/${encodeURIComponent(id)}`;
  return { stream: base, status: `${base}/status`, parameters: `${base}/parameters`, whip: `${base}/whip`, whep: `${base}/whep` };
}

/**
 * @param {unknown} value
 * @returns {Record<string, any> | null}
 */
function obj(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? /** @type {Record<string, any>} */ (value) : null;
}

/**
 * Whether a status response says the stream is active: state ONLINE or DEGRADED_*, or
 * inference output seen (fps > 0 or a last_output_time), or ingest bytes received.
 * Accepts the whole `{success, data}` body or just `data`.
 *
 * @param {unknown} body
 * @returns {boolean}
 */
export function isActiveStatus(body) {
  const root = obj(body);
  if (!root || root.success === false) return false;
  const data = obj(root.data) ?? root;
  const state = typeof data.state === "string" ? data.state.toUpperCase() : "";
  if (state === "ONLINE" || state.startsWith("DEGRADED")) return true;
  const inference = obj(data.inference_status);
  if (inference) {
    if (typeof inference.fps === "number" && inference.fps > 0) return true;
    const last = inference.last_output_time;
    if ((typeof last === "number" && last > 0) || (typeof last === "string" && last !== "" && last !== "0")) return true;
  }
  const peer = obj(obj(obj(obj(data.gateway_status)?.ingest_metrics)?.stats)?.peer_conn_stats);
  if (peer && typeof peer.BytesReceived === "number" && peer.BytesReceived > 0) return true;
  return false;
}

/**
 * The upstream WHEP URL in a status body (`data.gateway_status.whep_url`), if any.
 * @param {unknown} body
 * @returns {string | null}
 */
export function statusWhepUrl(body) {
  const root = obj(body);
  const data = obj(root?.data) ?? root;
  const url = obj(data?.gateway_status)?.whep_url;
  return typeof url === "string" && url !== "" ? url : null;
}

/** "not ready", "not-ready", "NOT_READY", "notready" (any case). */
const NOT_READY = /not[ _-]?ready/i;

/**
 * Whether an error body says the stream is not ready yet. Looks at the gateway's
 * `error` and `message` and at the upstream body it forwards as `details`
 * (`details.error`, `details.code`, e.g. `"STREAMS/NOT_READY"`); also accepts an
 * upstream-style body (`code` at the top level). Anything else (null, text) is false.
 *
 * @param {unknown} body
 * @returns {boolean}
 */
export function isNotReadyBody(body) {
  const root = obj(body);
  if (!root) return false;
  const details = obj(root.details);
  const texts = [root.error, root.message, root.code, details?.error, details?.code];
  return texts.some((t) => typeof t === "string" && NOT_READY.test(t));
}

/**
 * Whether a failed PATCH is a warm-up answer (retried, not counted), by time since the
 * stream was created:
 * - a body saying "not ready" ({@link isNotReadyBody}), or 409/429/5xx: within `warmupGraceMs`;
 * - a bare 404 (no "not ready" in its body): only within the short `bare404GraceMs`
 *   (the spec's "short grace window after stream creation"); later it counts, as
 *   a gone stream answers 404 too;
 * - anything else (400, 405, network errors, ...): never.
 *
 * @param {{ status: number, notReady: boolean }} answer
 * @param {number} sinceCreatedMs
 * @param {{ warmupGraceMs: number, bare404GraceMs: number }} windows
 * @returns {boolean}
 */
export function isPatchWarmupFailure(answer, sinceCreatedMs, windows) {
  if (sinceCreatedMs >= windows.warmupGraceMs) return false;
  if (answer.notReady) return true;
  if (answer.status === 404) return sinceCreatedMs < windows.bare404GraceMs;
  return isWarmupStatus(answer.status);
}

/**
 * What a status poll answer says about a LIVE stream:
 * - `"ok"`: answered 2xx;
 * - `"failed"`: no answer (network error, status 0) or 5xx (the gateway's 502/504 for an
 *   unreachable or slow upstream), or a 404 whose body says "not ready";
 * - `"gone"`: 404 or 403 for our own stream (ended, or no longer owned by this session);
 * - `"neutral"`: any other answer (e.g. 429): the server is there, nothing to conclude.
 *
 * @param {{ ok: boolean, httpStatus: number, body: unknown }} answer
 * @returns {"ok" | "failed" | "gone" | "neutral"}
 */
export function livePollVerdict(answer) {
  if (answer.ok) return "ok";
  const status = answer.httpStatus;
  if (status === 0 || status >= 500) return "failed";
  if (status === 404 || status === 403) return isNotReadyBody(answer.body) ? "failed" : "gone";
  return "neutral";
}

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

/**
 * @param {string} prompt the initial wanted prompt
 * @returns {LifecycleState}
 */
export function initialState(prompt) {
  return {
    phase: "idle",
    session: 0,
    mode: null,
    configOk: false,
    cameraOk: false,
    cameraReady: false,
    streamId: null,
    modelId: DEFAULT_MODEL_ID,
    playbackId: null,
    createdAt: null,
    replacing: null,
    replaced: false,
    countdownEndsAt: null,
    countdownDone: false,
    countdownShown: null,
    whip: { attempts: 0, nextAt: null, inFlight: false, answered: false, connected: false, windowStart: null, retried: false },
    whepUrl: null,
    playerStarted: false,
    playerFailed: false,
    revealed: null,
    statusActive: false,
    playing: false,
    nextPollAt: null,
    pollInFlight: false,
    pollFailures: 0,
    postGraceEndsAt: null,
    prompt,
    appliedPrompt: null,
    patch: { inFlight: null, failures: 0, retries: 0, nextAt: 0, disabled: false },
    status: MESSAGES.IDLE,
    notice: null,
    update: null,
    updateClearAt: null,
  };
}

/** @param {LifecycleState} s */
function isRunning(s) {
  return s.phase === "preparing" || s.phase === "creating" || s.phase === "connecting" || s.phase === "live";
}

/**
 * Fresh per-session fields (keeps mode, prompt).
 * @param {LifecycleState} s
 * @returns {LifecycleState}
 */
function resetSession(s) {
  const base = initialState(s.prompt);
  return { ...base, session: s.session, mode: s.mode, status: s.status, notice: null, update: null };
}

/**
 * Shared helpers working on a mutable draft plus the action list.
 */
class Draft {
  /**
   * @param {LifecycleState} state
   * @param {LifecycleOptions} options
   * @param {number} now
   */
  constructor(state, options, now) {
    /** @type {LifecycleState} */
    this.s = { ...state, whip: { ...state.whip }, patch: { ...state.patch } };
    this.o = options;
    this.now = now;
    /** @type {LifecycleAction[]} */
    this.actions = [];
  }

  /** @param {LifecycleAction} action */
  emit(action) {
    this.actions.push(action);
  }

  /** @param {string} message */
  status(message) {
    if (this.s.status !== message) {
      this.s.status = message;
      this.emit({ type: "SHOW", target: "status", message });
    }
  }

  /** @param {string | null} message */
  notice(message) {
    if (this.s.notice !== message) {
      this.s.notice = message;
      this.emit({ type: "SHOW", target: "notice", message });
    }
  }

  /**
   * Live prompt update feedback (its own polite line; it never touches `notice`, which
   * keeps "Live updates unavailable…" word for word). `clearAt`: when TICK clears it.
   * @param {string | null} message
   * @param {number | null} [clearAt]
   */
  update(message, clearAt = null) {
    const s = this.s;
    s.updateClearAt = message === null ? null : clearAt;
    if (s.update !== message || clearAt !== null) {
      s.update = message;
      this.emit({ type: "SHOW", target: "update", message, clearAt: s.updateClearAt });
    }
  }

  /**
   * Tears the session down. `end`: "delete" (Stop, errors) or "beacon" (tab closing).
   * @param {"delete" | "beacon"} end
   */
  teardown(end) {
    const s = this.s;
    if (s.playerStarted || s.revealed) this.emit({ type: "STOP_PLAYER" });
    if (s.revealed) this.emit({ type: "HIDE_OUTPUT" });
    if (s.countdownShown !== null) this.emit({ type: "COUNTDOWN", seconds: null });
    if (s.whip.inFlight || s.whip.answered) this.emit({ type: "WHIP_DISCONNECT" });
    if (s.streamId) {
      if (end === "beacon") this.emit({ type: "BEACON_END", streamId: s.streamId });
      else this.emit({ type: "DELETE_STREAM", session: s.session, id: s.streamId });
    }
    this.emit({ type: "STOP_CAMERA" });
    // The notice is about this session (live updates, player fallback): it ends with it.
    this.notice(null);
    this.update(null);
    this.s = resetSession(this.s);
  }

  /** @param {string} message */
  fail(message) {
    this.teardown("delete");
    this.s.phase = "error";
    this.status(message);
  }

  /** Start WHIP once the stream exists and the camera runs. */
  maybeConnectWhip() {
    const s = this.s;
    if ((s.phase !== "connecting" && s.phase !== "live") || !s.streamId || !s.cameraReady) return;
    if (s.whip.inFlight || s.whip.answered) return;
    if (s.whip.nextAt !== null && this.now < s.whip.nextAt) return;
    s.whip.inFlight = true;
    s.whip.nextAt = null;
    this.emit({ type: "WHIP_CONNECT", session: s.session, streamId: s.streamId, url: streamPaths(s.streamId).whip, attempt: s.whip.attempts });
    s.whip.attempts += 1;
  }

  /**
   * A WHIP attempt failed (HTTP error or peer failure): retry with backoff while the
   * attempt budget and the warm-up window allow, else fail with `message`.
   * @param {boolean} retryable
   * @param {string} message
   */
  whipFailed(retryable, message) {
    const s = this.s;
    const o = this.o.whipRetry;
    const inWindow = s.whip.windowStart !== null && this.now - s.whip.windowStart < this.o.warmupGraceMs;
    if (retryable && s.whip.attempts < o.maxAttempts && inWindow) {
      s.whip.nextAt = this.now + backoffDelay(s.whip.attempts - 1, { baseMs: o.baseMs, factor: o.factor, maxMs: o.maxMs });
      s.whip.retried = true;
      return;
    }
    this.fail(whipFailedMessage(message));
  }

  /** @param {string} url */
  knowWhep(url) {
    const s = this.s;
    if (s.whepUrl) return;
    s.whepUrl = url;
    if (!s.playerStarted) {
      s.playerStarted = true;
      this.emit({ type: "START_PLAYER", session: s.session, url });
    }
  }

  endCountdown() {
    const s = this.s;
    if (s.countdownDone) return;
    s.countdownDone = true;
    if (s.countdownShown !== null) {
      s.countdownShown = null;
      this.emit({ type: "COUNTDOWN", seconds: null });
    }
    this.reveal();
  }

  reveal() {
    const s = this.s;
    const kind = !s.playerFailed && (s.whepUrl || s.mode === "local") ? "whep" : "iframe";
    // Never from the (better) WHEP video back to the iframe, unless the player gave up.
    if (s.revealed === kind || (s.revealed === "whep" && kind === "iframe" && !s.playerFailed)) return;
    s.revealed = kind;
    this.emit({ type: "REVEAL_OUTPUT", kind, playbackId: s.playbackId });
  }

  /** Phase/status bookkeeping after any change. */
  settle() {
    const s = this.s;
    if (s.phase === "connecting" || s.phase === "live") {
      this.maybeConnectWhip();
      const outputVisible = s.countdownDone && (s.playing || s.statusActive);
      if (outputVisible && s.phase !== "live") {
        s.phase = "live";
        s.postGraceEndsAt = null;
      }
      // Live, but the camera's WHIP session failed and is being re-established, or the
      // server stopped answering status polls: say so rather than "live" over a frozen or
      // black output. (The WHIP/peer failure handling decides when to give up.)
      if (s.phase === "live") this.status(s.whip.answered && !this.connectionLost() ? MESSAGES.LIVE : MESSAGES.RECONNECTING);
      else if (s.countdownDone) this.status(MESSAGES.WAITING_OUTPUT);
      else if (s.whip.answered) this.status(MESSAGES.WARMING_UP);
      // Once a startup retry happened the line stays on "retrying" (no flip back to
      // "Connecting…" for every attempt: the status is an aria-live region).
      else this.status(s.whip.retried ? MESSAGES.WHIP_RETRY : MESSAGES.CONNECTING);
      this.maybePatch();
      // Changed back to the prompt the stream already runs with while a retry was pending:
      // nothing is being updated any more.
      if (s.update === MESSAGES.UPDATING_PROMPT && s.patch.inFlight === null && s.appliedPrompt === s.prompt) this.update(null);
    }
  }

  /** Live, and the last `lostAfterFailures` status polls failed (network error or 5xx). */
  connectionLost() {
    return this.s.phase === "live" && this.s.pollFailures >= this.o.lostAfterFailures;
  }

  /** Whether live updates may be sent: countdown over and the stream active. */
  patchGateOpen() {
    const s = this.s;
    return s.countdownDone && (s.statusActive || s.playing || s.whip.connected);
  }

  maybePatch() {
    const s = this.s;
    if (!s.streamId || s.patch.disabled || s.patch.inFlight !== null) return;
    if (s.appliedPrompt === s.prompt) return;
    if (!this.patchGateOpen() || this.now < s.patch.nextAt) return;
    s.patch.inFlight = s.prompt;
    this.emit({ type: "SEND_PATCH", session: s.session, streamId: s.streamId, body: promptUpdatePayload(s.modelId, s.prompt) });
    this.update(MESSAGES.UPDATING_PROMPT);
  }

  tick() {
    const s = this.s;
    if (s.phase !== "connecting" && s.phase !== "live") return;
    const now = this.now;
    if (s.updateClearAt !== null && now >= s.updateClearAt) this.update(null);
    // Countdown.
    if (!s.countdownDone && s.countdownEndsAt !== null) {
      if (now >= s.countdownEndsAt) this.endCountdown();
      else {
        const seconds = Math.ceil((s.countdownEndsAt - now) / 1000);
        if (seconds !== s.countdownShown) {
          s.countdownShown = seconds;
          this.emit({ type: "COUNTDOWN", seconds });
        }
      }
    }
    // Status polling.
    if (s.nextPollAt !== null && !s.pollInFlight && now >= s.nextPollAt && s.streamId) {
      s.pollInFlight = true;
      s.nextPollAt = null;
      this.emit({ type: "POLL_STATUS", session: s.session, streamId: s.streamId, timeoutMs: this.o.pollTimeoutMs });
    }
    // Warm-up window, then the post-poll grace, then give up.
    if (s.phase === "connecting" && s.countdownDone && s.createdAt !== null && !s.statusActive && !s.playing) {
      if (s.postGraceEndsAt === null) {
        if (now - s.createdAt >= this.o.warmupGraceMs) {
          s.postGraceEndsAt = now + this.o.postPollGraceMs;
          if (!s.pollInFlight && s.whip.answered && s.streamId) {
            s.pollInFlight = true;
            s.nextPollAt = null;
            this.emit({ type: "POLL_STATUS", session: s.session, streamId: s.streamId, timeoutMs: this.o.pollTimeoutMs });
          }
        }
      } else if (now >= s.postGraceEndsAt) {
        this.fail(MESSAGES.NOT_ACTIVE);
        return;
      }
    }
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
  const d = new Draft(state, options, now);
  const s = () => d.s;
  const current = "session" in event && typeof event.session === "number" ? event.session === state.session : true;

  switch (event.type) {
    case "CLICK_DREAM": {
      if (isRunning(state)) break;
      d.s = resetSession({ ...state, session: state.session + 1 });
      d.s.phase = "preparing";
      d.status(MESSAGES.PREPARING);
      d.notice(null);
      d.emit({ type: "CHECK_CONFIG", session: d.s.session });
      d.emit({ type: "CAMERA_PRECHECK", session: d.s.session });
      break;
    }
    case "CONFIG_OK":
    case "CAMERA_OK": {
      if (!current || s().phase !== "preparing") break;
      if (event.type === "CONFIG_OK") {
        if (!event.configured) {
          d.fail(MESSAGES.NOT_CONFIGURED);
          break;
        }
        s().mode = event.mode;
        s().configOk = true;
      } else {
        s().cameraOk = true;
      }
      if (s().configOk && s().cameraOk) {
        s().phase = "creating";
        d.status(MESSAGES.CREATING);
        s().appliedPrompt = s().prompt;
        d.emit({ type: "CREATE_STREAM", session: s().session, payload: createPayload(s().prompt) });
        d.emit({ type: "START_CAMERA", session: s().session });
      }
      break;
    }
    case "CONFIG_FAILED":
    case "CAMERA_FAILED": {
      if (!current || !isRunning(state)) break;
      d.fail(event.message);
      break;
    }
    case "CAMERA_READY": {
      if (!current || !isRunning(state)) break;
      s().cameraReady = true;
      d.settle();
      break;
    }
    case "CREATED": {
      if (!current || s().phase !== "creating") {
        // Late answer for a session that was stopped: do not leave a paid stream running.
        if (event.stream && typeof event.stream.id === "string") {
          d.emit({ type: "DELETE_STREAM", session: event.session, id: event.stream.id });
        }
        break;
      }
      const st = s();
      st.streamId = event.stream.id;
      st.playbackId = event.stream.output_playback_id ?? null;
      const modelId = event.stream.params?.model_id;
      if (typeof modelId === "string" && modelId !== "") st.modelId = modelId;
      st.createdAt = now;
      st.whip.windowStart = now;
      st.countdownEndsAt = now + d.o.countdownMs;
      st.phase = "connecting";
      st.countdownShown = Math.ceil(d.o.countdownMs / 1000);
      d.emit({ type: "COUNTDOWN", seconds: st.countdownShown });
      d.settle();
      break;
    }
    case "CREATE_FAILED": {
      if (!current || s().phase !== "creating") break;
      if (event.status === 409 && event.activeStreamId && !s().replaced) {
        s().replaced = true;
        s().replacing = event.activeStreamId;
        d.emit({ type: "DELETE_STREAM", session: s().session, id: event.activeStreamId });
        break;
      }
      d.fail(`Could not create the Dream stream: ${event.message}`);
      break;
    }
    case "DELETED": {
      if (!current || s().phase !== "creating" || s().replacing !== event.id) break;
      s().replacing = null;
      d.emit({ type: "CREATE_STREAM", session: s().session, payload: createPayload(s().prompt) });
      break;
    }
    case "TICK": {
      d.tick();
      d.settle();
      break;
    }
    case "WHIP_RESULT": {
      if (!current || (s().phase !== "connecting" && s().phase !== "live")) break;
      const st = s();
      st.whip.inFlight = false;
      if (event.ok) {
        st.whip.answered = true;
        st.nextPollAt = now;
        if (st.streamId && (st.mode === "local" || event.playbackUrl)) d.knowWhep(streamPaths(st.streamId).whep);
        d.tick();
      } else {
        const retryable = event.status === 0 || isWarmupStatus(event.status);
        d.whipFailed(retryable, event.message);
      }
      d.settle();
      break;
    }
    case "WHIP_STATE": {
      if (!current || (s().phase !== "connecting" && s().phase !== "live")) break;
      const st = s();
      if (event.state === "connected") {
        st.whip.connected = true;
        st.whip.attempts = 0;
      } else if (event.state === "failed") {
        st.whip.connected = false;
        st.whip.answered = false;
        st.whip.inFlight = false;
        d.emit({ type: "WHIP_DISCONNECT" });
        // A peer failure after startup gets the same bounded reconnect budget, its window
        // measured from the failure rather than from creation.
        if (st.whip.attempts === 0) st.whip.windowStart = now;
        d.whipFailed(true, event.error ?? "Peer connection failed");
      }
      d.settle();
      break;
    }
    case "STATUS_RESULT": {
      if (!current || (s().phase !== "connecting" && s().phase !== "live")) break;
      const st = s();
      st.pollInFlight = false;
      if (st.phase === "live") {
        const verdict = livePollVerdict(event);
        if (verdict === "gone") {
          // Our own stream answers 404 (ended) or 403 (no longer ours): it is over.
          d.fail(MESSAGES.STREAM_ENDED);
          break;
        }
        if (verdict === "failed") st.pollFailures += 1;
        else if (verdict === "ok") st.pollFailures = 0;
        // A failed poll is a suspicion: check again soon rather than in 5 s.
        st.nextPollAt = now + (st.pollFailures > 0 ? d.o.lostPollIntervalMs : d.o.livePollIntervalMs);
      } else {
        st.nextPollAt = now + d.o.pollIntervalMs;
      }
      if (event.ok && isActiveStatus(event.body)) st.statusActive = true;
      if (event.ok && st.streamId && statusWhepUrl(event.body)) d.knowWhep(streamPaths(st.streamId).whep);
      d.settle();
      break;
    }
    case "PLAYING": {
      if (!current || (s().phase !== "connecting" && s().phase !== "live")) break;
      s().playing = true;
      d.endCountdown();
      d.reveal();
      d.settle();
      break;
    }
    case "PLAYER_FAILED": {
      // The WHEP player gave up (output never appeared within its budget, or its
      // connection kept failing). Daydream mode with a playback id: Daydream's own player
      // (iframe) takes over and the stream keeps running. Otherwise nothing can show the
      // output: the session fails with the player's message (Retry starts afresh).
      if (!current || (s().phase !== "connecting" && s().phase !== "live")) break;
      const st = s();
      if (st.mode === "local" || !st.playbackId) {
        d.fail(event.message);
        break;
      }
      st.playerFailed = true;
      st.playing = false;
      d.emit({ type: "STOP_PLAYER" });
      d.notice(MESSAGES.PLAYER_FALLBACK);
      if (st.countdownDone) d.reveal();
      d.settle();
      break;
    }
    case "PROMPT_CHANGED": {
      s().prompt = event.prompt;
      d.settle();
      break;
    }
    case "PATCH_RESULT": {
      if (!current || s().patch.inFlight === null) break;
      const st = s();
      const sent = st.patch.inFlight;
      st.patch.inFlight = null;
      if (event.ok) {
        st.appliedPrompt = sent;
        st.patch.failures = 0;
        st.patch.retries = 0;
        st.patch.nextAt = now;
        // Only when nothing newer waits (otherwise the next PATCH keeps "Updating prompt…").
        if (st.appliedPrompt === st.prompt) d.update(MESSAGES.PROMPT_UPDATED, now + d.o.promptUpdatedMs);
      } else {
        const p = d.o.patch;
        const since = st.createdAt === null ? Infinity : now - st.createdAt;
        const policy = { baseMs: p.baseMs, factor: p.factor, maxMs: p.maxMs };
        if (isPatchWarmupFailure({ status: event.status, notReady: event.notReady === true }, since, p)) {
          st.patch.nextAt = now + backoffDelay(st.patch.retries, policy);
          st.patch.retries += 1;
        } else {
          st.patch.failures += 1;
          if (st.patch.failures >= p.maxFailures) {
            st.patch.disabled = true;
            d.notice(MESSAGES.LIVE_UPDATES_UNAVAILABLE);
            d.update(null);
          } else {
            st.patch.nextAt = now + backoffDelay(st.patch.failures - 1, policy);
          }
        }
      }
      d.settle();
      break;
    }
    case "STOP": {
      if (state.phase === "idle") break;
      const wasError = state.phase === "error";
      d.teardown("delete");
      d.s.phase = "idle";
      d.status(wasError ? MESSAGES.IDLE : MESSAGES.STOPPED);
      break;
    }
    case "PAGEHIDE": {
      if (!isRunning(state)) break;
      d.teardown("beacon");
      d.s.phase = "idle";
      break;
    }
    case "ERROR": {
      if (!current || !isRunning(state)) break;
      d.fail(event.message);
      break;
    }
  }
  return { state: d.s, actions: d.actions };
}

/**
 * Earliest future time at which a TICK could produce something (for a shell that wants to
 * sleep precisely); null when nothing is scheduled.
 *
 * @param {LifecycleState} s
 * @returns {number | null}
 */
export function nextDeadline(s) {
  /** @type {number[]} */
  const times = [];
  if (!s.countdownDone && s.countdownEndsAt !== null) times.push(s.countdownEndsAt);
  if (s.whip.nextAt !== null) times.push(s.whip.nextAt);
  if (s.nextPollAt !== null && !s.pollInFlight) times.push(s.nextPollAt);
  if (s.postGraceEndsAt !== null) times.push(s.postGraceEndsAt);
  if (s.updateClearAt !== null) times.push(s.updateClearAt);
  if (s.streamId && s.patch.inFlight === null && !s.patch.disabled && s.appliedPrompt !== s.prompt) times.push(s.patch.nextAt);
  return times.length ? Math.min(...times) : null;
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
