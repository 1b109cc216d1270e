// @ts-check
/**
 * The Dream page's imperative shell. All decisions (timers, retries, grace windows,
 * failure counters) are made by the pure lifecycle in `lib/lifecycle.js`; this file only
 * feeds it events (clicks, fetch results, WebRTC state, a TICK at the lifecycle's next
 * deadline) and executes the actions it returns with the real browser APIs. The only wait here
 * (the stream DELETE after the WHIP session ended) is bounded by `timing.js`.
 */

import { MESSAGES, createLifecycle, tickDelay } from "./lib/lifecycle.js";
import { isNotReadyBody } from "./lib/readers.js";
import { buildPrompt, initialSettings, isPersonaId, savePersona, DEFAULT_BASE_PROMPT } from "./lib/params.js";
import { CanvasCapture, cameraErrorMessage, precheckCamera } from "./lib/capture.js";
import { DEFAULT_CONFIG, WHIPClient } from "./lib/whip-client.js";
import { waitBounded } from "./lib/waits.js";
import { STREAM_DELETE_WAIT_MS } from "./lib/timing.js";
import { WHEPPlayer } from "./lib/whep-player.js";
import { iframeSrc, selectTier, tierStyles } from "./lib/display.js";

/** @typedef {import("./lib/lifecycle.js").LifecycleEvent} LifecycleEvent */
/** @typedef {import("./lib/lifecycle.js").LifecycleAction} LifecycleAction */

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function byId(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`Dream page: missing #${id}`);
  return el;
}

const els = {
  output: byId("output", HTMLDivElement),
  video: byId("output-video", HTMLVideoElement),
  iframeSlot: byId("iframe-slot", HTMLDivElement),
  placeholder: byId("placeholder", HTMLDivElement),
  countdown: byId("countdown", HTMLDivElement),
  countdownValue: byId("countdown-value", HTMLSpanElement),
  toggle: byId("dream-toggle", HTMLButtonElement),
  sizeToggle: byId("size-toggle", HTMLButtonElement),
  promptForm: byId("prompt-form", HTMLFormElement),
  prompt: byId("prompt", HTMLInputElement),
  status: byId("status", HTMLParagraphElement),
  notice: byId("notice", HTMLParagraphElement),
  updateNotice: byId("update-notice", HTMLParagraphElement),
  modeNote: byId("mode-note", HTMLParagraphElement),
};

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

/** @type {{ configured: boolean, mode: "daydream" | "local", iframeBase: string } | null} */
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
  render();
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

/**
 * Reads a gateway error body (`{error, message}`) into one line.
 * @param {Response} res
 * @returns {Promise<{ message: string, body: any }>}
 */
async function readError(res) {
  /** @type {any} */
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON.
  }
  const message = body && typeof body.message === "string" ? body.message : body && typeof body.error === "string" ? body.error : `HTTP ${res.status}`;
  return { message, body };
}

/**
 * @param {string} url
 * @param {RequestInit} [init]
 */
function api(url, init = {}) {
  return fetch(url, { credentials: "same-origin", ...init });
}

async function loadConfig() {
  const res = await api("/api/daydream/config", { cache: "no-store" });
  if (!res.ok) throw new Error((await readError(res)).message);
  const body = await res.json();
  config = {
    configured: Boolean(body.configured),
    mode: body.mode === "local" ? "local" : "daydream",
    iframeBase: typeof body.playback?.iframeBase === "string" ? body.playback.iframeBase : "https://lvpr.tv/",
  };
  showMode();
  return config;
}

function showMode() {
  if (!config) return;
  if (config.mode === "local") {
    els.modeNote.textContent = "Local mode: running on the embedded Dreamgate engine (no Daydream account used).";
    els.modeNote.hidden = false;
  } else if (!config.configured) {
    els.modeNote.textContent = "Dream is not configured on this server.";
    els.modeNote.hidden = false;
  } else {
    els.modeNote.hidden = true;
  }
}

/** @param {LifecycleAction} action */
function run(action) {
  switch (action.type) {
    case "CHECK_CONFIG": {
      const session = action.session;
      loadConfig().then(
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
    case "STOP_CAMERA": {
      capture?.stop();
      capture = null;
      break;
    }
    case "CREATE_STREAM": {
      const session = action.session;
      void (async () => {
        try {
          const res = await api("/api/daydream/streams", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(action.payload),
          });
          if (res.ok) {
            const stream = await res.json();
            dispatch({ type: "CREATED", session, stream });
          } else {
            const { message, body } = await readError(res);
            const activeStreamId = body && typeof body.activeStreamId === "string" ? body.activeStreamId : undefined;
            dispatch({ type: "CREATE_FAILED", session, status: res.status, message, activeStreamId });
          }
        } catch (err) {
          dispatch({ type: "CREATE_FAILED", session, status: 0, message: err instanceof Error ? err.message : String(err) });
        }
      })();
      break;
    }
    case "DELETE_STREAM": {
      const { session, id } = action;
      void (async () => {
        // The WHIP session ends first (its DELETE answered or timed out), at most STREAM_DELETE_WAIT_MS.
        await waitBounded(whipClosing, STREAM_DELETE_WAIT_MS);
        try {
          await api(`/api/daydream/streams/${encodeURIComponent(id)}`, { method: "DELETE", keepalive: true });
        } catch {
          // The gateway reaps abandoned streams.
        }
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
    case "POLL_STATUS": {
      const { session, streamId, timeoutMs } = action;
      void (async () => {
        try {
          // A poll that hangs (server gone quiet) ends as a network error after timeoutMs.
          const res = await api(`/api/daydream/streams/${encodeURIComponent(streamId)}/status`, { cache: "no-store", signal: AbortSignal.timeout(timeoutMs) });
          /** @type {unknown} */
          let body = null;
          try {
            body = await res.json();
          } catch {
            // Not JSON.
          }
          dispatch({ type: "STATUS_RESULT", session, ok: res.ok, httpStatus: res.status, body });
        } catch {
          dispatch({ type: "STATUS_RESULT", session, ok: false, httpStatus: 0, body: null });
        }
      })();
      break;
    }
    case "START_PLAYER": {
      const session = action.session;
      player?.stop();
      const p = new WHEPPlayer({
        url: action.url,
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
      break;
    }
    case "STOP_PLAYER": {
      player?.stop();
      player = null;
      break;
    }
    case "REVEAL_OUTPUT": {
      els.placeholder.hidden = true;
      if (action.kind === "whep") {
        removeIframe();
        els.video.hidden = false;
        els.output.dataset.output = "whep";
      } else if (action.playbackId && config) {
        showIframe(action.playbackId);
        els.output.dataset.output = "iframe";
      }
      break;
    }
    case "HIDE_OUTPUT": {
      removeIframe();
      els.video.hidden = false;
      els.placeholder.hidden = false;
      delete els.output.dataset.output;
      break;
    }
    case "COUNTDOWN": {
      if (action.seconds === null) {
        els.countdown.hidden = true;
      } else {
        els.countdownValue.textContent = String(action.seconds);
        els.countdown.hidden = false;
      }
      break;
    }
    case "SEND_PATCH": {
      const { session, streamId, body } = action;
      void (async () => {
        try {
          const res = await api(`/api/daydream/streams/${encodeURIComponent(streamId)}/parameters`, {
            method: "PATCH",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(body),
          });
          if (res.ok) dispatch({ type: "PATCH_RESULT", session, ok: true, status: res.status });
          else {
            const { message, body: error } = await readError(res);
            dispatch({ type: "PATCH_RESULT", session, ok: false, status: res.status, message, notReady: isNotReadyBody(error) });
          }
        } catch (err) {
          dispatch({ type: "PATCH_RESULT", session, ok: false, status: 0, message: err instanceof Error ? err.message : String(err) });
        }
      })();
      break;
    }
    case "SHOW": {
      if (action.target === "status") {
        els.status.textContent = action.message ?? "";
      } else if (action.target === "update") {
        // Cleared by the lifecycle's TICK at action.clearAt (one of its deadlines).
        els.updateNotice.textContent = action.message ?? "";
        els.updateNotice.hidden = !action.message;
      } else {
        els.notice.textContent = action.message ?? "";
        els.notice.hidden = !action.message;
      }
      break;
    }
    case "BEACON_END": {
      // text/plain body: a "simple" request the browser sends even while the page unloads.
      navigator.sendBeacon("/api/daydream/streams/end", JSON.stringify({ streamId: action.streamId }));
      break;
    }
  }
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

function removeIframe() {
  els.iframeSlot.replaceChildren();
  els.iframeSlot.hidden = true;
}

/** @param {string} playbackId */
function showIframe(playbackId) {
  if (!config) return;
  const iframe = document.createElement("iframe");
  iframe.src = iframeSrc(config.iframeBase, playbackId);
  iframe.title = "Dream output";
  iframe.allow = "autoplay; encrypted-media; picture-in-picture";
  iframe.referrerPolicy = "no-referrer";
  els.iframeSlot.replaceChildren(iframe);
  els.iframeSlot.hidden = false;
  els.video.hidden = true;
  applyTier();
}

function applyTier() {
  const styles = tierStyles(selectTier({ viewportWidth: window.innerWidth, small: smallOutput }));
  els.output.style.width = styles.container.width;
  els.output.style.height = styles.container.height;
  const iframe = els.iframeSlot.querySelector("iframe");
  if (iframe) {
    iframe.style.minHeight = styles.iframe.minHeight;
    iframe.style.height = styles.iframe.minHeight;
    iframe.style.marginTop = styles.iframe.marginTop;
  }
}

function render() {
  const state = lifecycle.state;
  const phase = state.phase;
  const running = phase === "preparing" || phase === "creating" || phase === "connecting" || phase === "live";
  const action = running ? "stop" : phase === "error" ? "retry" : "dream";
  els.toggle.dataset.action = action;
  els.toggle.textContent = action === "stop" ? "Stop" : action === "retry" ? "Retry" : "Dream";
  els.output.dataset.phase = phase;
  // Green only while it really is live (not while the camera's connection is being re-established).
  els.status.dataset.kind = phase === "error" ? "error" : phase === "live" && state.status === MESSAGES.LIVE ? "live" : "info";
  if (!els.status.textContent) els.status.textContent = state.status;
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
  applyTier();
});

window.addEventListener("resize", applyTier);
window.addEventListener("pagehide", () => dispatch({ type: "PAGEHIDE" }));

applyTier();
render();
loadConfig().catch(() => {
  // Shown when the user presses Dream (CONFIG_FAILED).
});
