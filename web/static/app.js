// @ts-check
/**
 * The Dream page's imperative shell. All decisions (timers, retries, grace windows,
 * failure counters) are made by the pure lifecycle in `lib/lifecycle.js`; this file only
 * feeds it events (clicks, fetch results, WebRTC state, a TICK at the lifecycle's next
 * deadline) and executes the actions it returns with the real browser APIs: the gateway
 * calls (`lib/gateway.js`), camera, WHIP, WHEP and the DOM (`lib/view.js`). The only wait
 * here (the stream DELETE after the WHIP session ended) is bounded by `timing.js`.
 */

import { createLifecycle, tickDelay } from "./lib/lifecycle.js";
import { buildPrompt, initialSettings, isPersonaId, savePersona, DEFAULT_BASE_PROMPT } from "./lib/params.js";
import { CanvasCapture, cameraErrorMessage, precheckCamera } from "./lib/capture.js";
import { DEFAULT_CONFIG, WHIPClient } from "./lib/whip-client.js";
import { waitBounded } from "./lib/waits.js";
import { STREAM_DELETE_WAIT_MS } from "./lib/timing.js";
import { WHEPPlayer } from "./lib/whep-player.js";
import { createStream, deleteStream, loadConfig, openStatusEvents, pollStatus, sendEndBeacon, sendPatch } from "./lib/gateway.js";
import { applyTier, findElements, hideOutput, render, revealOutput, showCountdown, showLine, showMode } from "./lib/view.js";
import { setupKeep } from "./lib/keep.js";
import { setupStatsPanel } from "./lib/stats-panel.js";

/** @typedef {import("./lib/lifecycle.js").LifecycleEvent} LifecycleEvent */
/** @typedef {import("./lib/lifecycle.js").LifecycleAction} LifecycleAction */

const els = findElements();

/** localStorage, or null where it is unavailable (privacy mode, sandboxed frames). */
function storage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

const settings = initialSettings(storage());
let persona = settings.persona;
// The prompt is deliberately not persisted: override any form value the browser restored.
els.prompt.value = settings.basePrompt;
for (const radio of document.querySelectorAll('input[name="persona"]')) {
  if (radio instanceof HTMLInputElement) radio.checked = radio.value === persona;
}

const lifecycle = createLifecycle({ prompt: buildPrompt(persona, els.prompt.value) });
const keep = setupKeep({ video: els.video, snapshot: els.snapshot, record: els.record, timer: els.recordTimer, status: (message) => showLine(els, { type: "SHOW", target: "update", message, clearAt: null }) });

/** @type {import("./lib/readers.js").DreamConfig | null} */
let config = null;
/** @type {CanvasCapture | null} */
let capture = null;
/** @type {WHIPClient | null} */
let whip = null;
/** @type {Promise<void>} */
let whipClosing = Promise.resolve();
/** @type {WHEPPlayer | null} */
let player = null;
/** The one timer: the next TICK, at the lifecycle's next deadline. @type {ReturnType<typeof setTimeout> | null} */
let wakeTimer = null;
let smallOutput = false;
/** @type {number | null} */
let clickedAt = null;
/** Closes the status event stream, while one is open. @type {(() => void) | null} */
let closeEvents = null;
/** Decoded output frames are reported to the freeze watchdog at most this often. */
const FRAME_REPORT_MS = 250;
let lastFrameReport = -Infinity;

const now = () => performance.now();

/** @type {LifecycleEvent[]} */
const queue = [];
let dispatching = false;

/** Feeds an event to the lifecycle and runs the resulting actions. @param {LifecycleEvent} event */
function dispatch(event) {
  queue.push(event);
  if (dispatching) return;
  dispatching = true;
  try {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const actions = lifecycle.handle(next, now());
      for (const action of actions) {
        try {
          run(action);
        } catch (err) {
          console.error("Dream: action failed", action.type, err);
        }
      }
    }
  } finally {
    dispatching = false;
  }
  render(els, lifecycle.state);
  const { phase, output } = lifecycle.state;
  keep.setAvailable(phase === "live" && output.revealed === "whep" && output.playing);
  sleepUntilDeadline();
}

/** Re-arms the one timer after every step: a TICK exactly when the lifecycle has something to do, none while nothing is scheduled. */
function sleepUntilDeadline() {
  if (wakeTimer !== null) clearTimeout(wakeTimer);
  wakeTimer = null;
  const delay = tickDelay(lifecycle.state, now());
  if (delay === null) return;
  wakeTimer = setTimeout(() => {
    wakeTimer = null;
    dispatch({ type: "TICK" });
  }, delay);
}

/** Loads the config, remembers it and shows the mode note. */
async function refreshConfig() {
  const c = await loadConfig();
  config = c;
  showMode(els, c);
  return c;
}

/** @param {LifecycleAction} action */
function run(action) {
  switch (action.type) {
    case "CHECK_CONFIG": {
      const session = action.session;
      refreshConfig().then(
        (c) => dispatch({ type: "CONFIG_OK", session, configured: c.configured, mode: c.mode }),
        (err) => dispatch({ type: "CONFIG_FAILED", session, message: `Cannot reach the Dream service: ${err instanceof Error ? err.message : err}` }),
      );
      break;
    }
    case "CAMERA_PRECHECK": {
      const session = action.session;
      precheckCamera(navigator.mediaDevices, /** @type {any} */ (navigator.permissions)).then(
        () => dispatch({ type: "CAMERA_OK", session }),
        (err) => dispatch({ type: "CAMERA_FAILED", session, message: cameraErrorMessage(err) }),
      );
      break;
    }
    case "START_CAMERA": {
      const session = action.session;
      capture?.stop();
      const c = new CanvasCapture();
      capture = c;
      c.start().then(
        () => dispatch({ type: "CAMERA_READY", session }),
        (err) => {
          if (capture === c) dispatch({ type: "CAMERA_FAILED", session, message: cameraErrorMessage(err) });
        },
      );
      break;
    }
    case "STOP_CAMERA":
      capture?.stop();
      capture = null;
      break;
    case "CREATE_STREAM":
      void createStream(action.session, action.payload).then(dispatch);
      break;
    case "DELETE_STREAM": {
      const { session, id } = action;
      void (async () => {
        // The WHIP session ends first (its DELETE answered or timed out), at most STREAM_DELETE_WAIT_MS.
        await waitBounded(whipClosing, STREAM_DELETE_WAIT_MS);
        await deleteStream(id);
        dispatch({ type: "DELETED", session, id });
      })();
      break;
    }
    case "WHIP_CONNECT":
      void connectWhip(action.session, action.url);
      break;
    case "WHIP_DISCONNECT": {
      const client = whip;
      whip = null;
      if (client) whipClosing = client.disconnect().catch(() => {});
      break;
    }
    case "OPEN_EVENTS":
      closeEvents?.();
      closeEvents = openStatusEvents(action.session, action.url, dispatch);
      break;
    case "CLOSE_EVENTS":
      closeEvents?.();
      closeEvents = null;
      break;
    case "POLL_STATUS":
      void pollStatus(action.session, action.streamId, action.timeoutMs).then(dispatch);
      break;
    case "START_PLAYER":
      startPlayer(action.session, action.url);
      break;
    case "STOP_PLAYER":
      player?.stop();
      player = null;
      break;
    case "REVEAL_OUTPUT":
      revealOutput(els, action, config, smallOutput);
      break;
    case "HIDE_OUTPUT":
      hideOutput(els);
      break;
    case "COUNTDOWN":
      showCountdown(els, action.seconds);
      break;
    case "SEND_PATCH":
      void sendPatch(action.session, action.streamId, action.body).then(dispatch);
      break;
    case "SHOW":
      showLine(els, action);
      break;
    case "BEACON_END":
      sendEndBeacon(action.streamId);
      break;
  }
}

/**
 * @param {number} session
 * @param {string} url
 */
function startPlayer(session, url) {
  player?.stop();
  const p = new WHEPPlayer({
    url,
    video: els.video,
    // Local mode: loopback only, no public STUN.
    iceServers: config?.mode === "local" ? [] : DEFAULT_CONFIG.iceServers,
    onPlaying: () => {
      if (player !== p) return;
      if (clickedAt !== null) {
        console.info(`Dream: first output frame ${Math.round(now() - clickedAt)} ms after clicking Dream`);
        clickedAt = null;
      }
      dispatch({ type: "PLAYING", session });
    },
    onError: (message) => {
      console.warn("Dream: WHEP playback gave up:", message);
      if (player === p) dispatch({ type: "PLAYER_FAILED", session, message });
    },
  });
  player = p;
  p.start();
}

/**
 * @param {number} session
 * @param {string} url
 */
async function connectWhip(session, url) {
  const old = whip;
  whip = null;
  if (old) await old.disconnect().catch(() => {});
  const source = capture?.stream?.getVideoTracks()[0];
  // The client stops its tracks on disconnect: give it a clone so a retry still has the canvas.
  const stream = new MediaStream(source ? [source.clone()] : []);
  const client = new WHIPClient({
    whipUrl: url,
    stream,
    // Local mode: no public STUN (loopback only); the engine advertises its own in `Link`.
    iceServers: config?.mode === "local" ? [] : undefined,
    enableTrickleICE: false,
  });
  whip = client;
  let answered = false;
  client.onConnectionStateChange((st) => {
    if (!answered || whip !== client) return;
    if (st.state === "connected" || st.state === "failed" || st.state === "disconnected") {
      dispatch({ type: "WHIP_STATE", session, state: st.state, error: st.error });
    }
  });
  try {
    await client.connect();
    if (whip !== client) return;
    answered = true;
    dispatch({ type: "WHIP_RESULT", session, ok: true, playbackUrl: client.playbackUrl });
    if (client.getPeerConnection()?.connectionState === "connected") dispatch({ type: "WHIP_STATE", session, state: "connected" });
  } catch (err) {
    if (whip === client) whip = null;
    for (const t of stream.getTracks()) t.stop();
    const status = err && typeof err === "object" && "status" in err && typeof err.status === "number" ? err.status : 0;
    const message = err instanceof Error ? err.message : String(err);
    dispatch({ type: "WHIP_RESULT", session, ok: false, status, message });
  }
}

function promptChanged() {
  dispatch({ type: "PROMPT_CHANGED", prompt: buildPrompt(persona, els.prompt.value || DEFAULT_BASE_PROMPT) });
}

els.toggle.addEventListener("click", () => {
  const action = els.toggle.dataset.action;
  if (action === "stop") {
    dispatch({ type: "STOP" });
  } else {
    clickedAt = now();
    dispatch({ type: "CLICK_DREAM" });
  }
});

for (const radio of document.querySelectorAll('input[name="persona"]')) {
  radio.addEventListener("change", (e) => {
    const target = e.target;
    if (!(target instanceof HTMLInputElement) || !target.checked || !isPersonaId(target.value)) return;
    persona = target.value;
    savePersona(storage(), persona);
    promptChanged();
  });
}

els.promptForm.addEventListener("submit", (e) => {
  e.preventDefault();
  promptChanged();
});

els.sizeToggle.addEventListener("click", () => {
  smallOutput = !smallOutput;
  els.sizeToggle.setAttribute("aria-pressed", String(smallOutput));
  applyTier(els, smallOutput);
});

window.addEventListener("resize", () => applyTier(els, smallOutput));
document.addEventListener("visibilitychange", () => dispatch({ type: "VISIBILITY", visible: document.visibilityState === "visible" }));

/**
 * Reports decoded output frames (requestVideoFrameCallback) to the freeze watchdog, at most
 * every FRAME_REPORT_MS. Without requestVideoFrameCallback frames cannot be seen: the
 * watchdog stays off (reported as "not visible").
 */
function watchFrames() {
  const video = els.video;
  if (typeof video.requestVideoFrameCallback !== "function") {
    dispatch({ type: "VISIBILITY", visible: false });
    return;
  }
  const onFrame = () => {
    const t = now();
    if (lifecycle.state.phase === "live" && t - lastFrameReport >= FRAME_REPORT_MS) {
      lastFrameReport = t;
      dispatch({ type: "FRAME", session: lifecycle.state.session });
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

setupStatsPanel(
  { toggle: els.statsToggle, panel: els.statsPanel, list: els.statsList, verdict: els.statsVerdict },
  {
    up: () => whip?.getPeerConnection() ?? null,
    down: () => player?.pc ?? null,
    condition: () => {
      const { view, pushedPhase } = lifecycle.state.watch;
      // A restart in the last 10 s (the status's wall-clock time) or a pipeline (re)loading.
      const restarting = view?.restartTime != null && Date.now() - view.restartTime < 10000;
      return { state: lifecycle.state.phase === "live" ? (view?.state ?? null) : null, pushedPhase, restarting };
    },
  },
);
window.addEventListener("pagehide", () => dispatch({ type: "PAGEHIDE" }));

applyTier(els, smallOutput);
render(els, lifecycle.state);
watchFrames();
if (document.visibilityState !== "visible") dispatch({ type: "VISIBILITY", visible: false });
refreshConfig().catch(() => {
  // Shown when the user presses Dream (CONFIG_FAILED).
});
