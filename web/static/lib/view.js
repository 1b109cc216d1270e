// @ts-check
/**
 * The Dream page's DOM: the elements the shell uses, and how each lifecycle action and
 * state shows on them (status lines, countdown, output reveal, iframe tiers, the toggle).
 * No decisions: the lifecycle makes them.
 *
 * @module view
 */

import { MESSAGES } from "./lifecycle.js";
import { iframeSrc, selectTier, tierStyles } from "./display.js";

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

/** The page's elements (throws when the page lacks one). */
export function findElements() {
  return {
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
    statsToggle: byId("stats-toggle", HTMLButtonElement),
    statsPanel: byId("stats-panel", HTMLDivElement),
    statsList: byId("stats-list", HTMLDListElement),
    statsVerdict: byId("stats-verdict", HTMLParagraphElement),
    snapshot: byId("snapshot", HTMLButtonElement),
    record: byId("record", HTMLButtonElement),
    recordTimer: byId("record-timer", HTMLSpanElement),
  };
}

/** @typedef {ReturnType<typeof findElements>} Elements */
/** @typedef {import("./lifecycle.js").LifecycleAction} LifecycleAction */

/**
 * The note under the title: local mode, or a server without a Daydream key.
 * @param {Elements} els
 * @param {import("./readers.js").DreamConfig} config
 */
export function showMode(els, config) {
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

/**
 * Output container size and iframe cropping for the viewport and the size toggle.
 * @param {Elements} els
 * @param {boolean} small
 */
export function applyTier(els, small) {
  const styles = tierStyles(selectTier({ viewportWidth: window.innerWidth, small }));
  els.output.style.width = styles.container.width;
  els.output.style.height = styles.container.height;
  const iframe = els.iframeSlot.querySelector("iframe");
  if (iframe) {
    iframe.style.minHeight = styles.iframe.minHeight;
    iframe.style.height = styles.iframe.minHeight;
    iframe.style.marginTop = styles.iframe.marginTop;
  }
}

/** @param {Elements} els */
function removeIframe(els) {
  els.iframeSlot.replaceChildren();
  els.iframeSlot.hidden = true;
}

/**
 * Daydream's player for `playbackId` in place of the video.
 * @param {Elements} els
 * @param {string} iframeBase
 * @param {string} playbackId
 * @param {boolean} small
 */
function showIframe(els, iframeBase, playbackId, small) {
  const iframe = document.createElement("iframe");
  iframe.src = iframeSrc(iframeBase, playbackId);
  iframe.title = "Dream output";
  iframe.allow = "autoplay; encrypted-media; picture-in-picture";
  iframe.referrerPolicy = "no-referrer";
  els.iframeSlot.replaceChildren(iframe);
  els.iframeSlot.hidden = false;
  els.video.hidden = true;
  applyTier(els, small);
}

/**
 * Shows the output the lifecycle chose (REVEAL_OUTPUT); the iframe needs the config's base.
 * @param {Elements} els
 * @param {Extract<LifecycleAction, { type: "REVEAL_OUTPUT" }>} action
 * @param {import("./readers.js").DreamConfig | null} config
 * @param {boolean} small
 */
export function revealOutput(els, action, config, small) {
  els.placeholder.hidden = true;
  if (action.kind === "whep") {
    removeIframe(els);
    els.video.hidden = false;
    els.output.dataset.output = "whep";
  } else if (action.playbackId && config) {
    showIframe(els, config.iframeBase, action.playbackId, small);
    els.output.dataset.output = "iframe";
  }
}

/** Back to the placeholder (HIDE_OUTPUT). @param {Elements} els */
export function hideOutput(els) {
  removeIframe(els);
  els.video.hidden = false;
  els.placeholder.hidden = false;
  delete els.output.dataset.output;
}

/**
 * @param {Elements} els
 * @param {number | null} seconds null: hidden
 */
export function showCountdown(els, seconds) {
  if (seconds === null) {
    els.countdown.hidden = true;
  } else {
    els.countdownValue.textContent = String(seconds);
    els.countdown.hidden = false;
  }
}

/**
 * One of the three lines (SHOW): status, live update feedback (cleared by the lifecycle's
 * TICK at `clearAt`, one of its deadlines), notice.
 * @param {Elements} els
 * @param {Extract<LifecycleAction, { type: "SHOW" }>} action
 */
export function showLine(els, action) {
  if (action.target === "status") {
    els.status.textContent = action.message ?? "";
  } else if (action.target === "update") {
    els.updateNotice.textContent = action.message ?? "";
    els.updateNotice.hidden = !action.message;
  } else {
    els.notice.textContent = action.message ?? "";
    els.notice.hidden = !action.message;
  }
}

/**
 * The toggle (Dream / Stop / Retry), the phase on the output, the status line's kind.
 * @param {Elements} els
 * @param {import("./lifecycle.js").LifecycleState} state
 */
export function render(els, state) {
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
