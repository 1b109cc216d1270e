// @ts-check
/**
 * WHEP (WebRTC-HTTP Egress Protocol) player: plays a stream's output in a `<video>`.
 *
 * Every retry/restart decision is `whep-machine.js` {@link whepStep}; this class only executes
 * its actions and feeds it the outcomes:
 * - the output exists only once the backend produces frames, so the POST answers 404 at
 *   first: attempts follow `whepRetryDelay` (0, 200 ms x 10, then 500 * 2^k, like
 *   Daydream's player) for at most `WHEP_RETRY_BUDGET_MS` (60 s), then the player gives
 *   up (`onError`). The same offer is re-posted (no answer was applied to it);
 * - a connection that fails (or shows no frames in time) is restarted with a fresh peer,
 *   with backoff, at most `WHEP_MAX_RESTARTS` (3) times in a row, then the player gives up.
 * "Playing" means the `playing` event fired AND a frame was decoded
 * (`requestVideoFrameCallback`, or a non-zero video size where unsupported).
 *
 * @module whep-player
 */

import { preferH264, resolveResourceUrl } from "./signalling.js";
import { BROWSER_CLOCK, waitBounded, waitForGathering } from "./waits.js";
import { DELETE_TIMEOUT_MS, GATHERING_BUDGET_MS, ICE_GATHERING_TIMEOUT_MS } from "./timing.js";
import { PLAYING_CHECK_MS, initialWhepState, whepDeadline, whepStep } from "./whep-machine.js";

/**
 * @typedef {object} WHEPPlayerOptions
 * @property {string} url WHEP endpoint (the gateway path)
 * @property {HTMLVideoElement} video muted, autoplay, playsinline
 * @property {RTCIceServer[]} [iceServers] default none (the server's candidates are enough)
 * @property {() => void} [onPlaying] once per connection, when frames are on screen
 * @property {(message: string) => void} [onError] the player gave up (`whep-machine.js` `WHEP_MESSAGES`)
 */

/**
 * Resolves once `video` is playing decoded frames.
 *
 * @param {HTMLVideoElement} video
 * @param {AbortSignal} signal
 * @returns {Promise<void>}
 */
export function waitForPlaying(video, signal) {
  return new Promise((resolve) => {
    let playing = !video.paused && video.readyState >= 3;
    let framed = false;
    /** @type {number | null} */
    let rvfc = null;
    const cleanup = () => {
      video.removeEventListener("playing", onPlaying);
      if (rvfc !== null && typeof video.cancelVideoFrameCallback === "function") video.cancelVideoFrameCallback(rvfc);
      rvfc = null;
      clearInterval(poll);
      signal.removeEventListener("abort", cleanup);
    };
    const check = () => {
      if (playing && framed && !signal.aborted) {
        cleanup();
        resolve();
      }
    };
    const onPlaying = () => {
      playing = true;
      check();
    };
    video.addEventListener("playing", onPlaying);
    signal.addEventListener("abort", cleanup);
    // A decoded frame: requestVideoFrameCallback where available; a video size and an
    // advancing currentTime as a fallback (covers elements the compositor skips).
    if (typeof video.requestVideoFrameCallback === "function") {
      rvfc = video.requestVideoFrameCallback(() => {
        rvfc = null;
        framed = true;
        check();
      });
    }
    const poll = setInterval(() => {
      if (!video.paused && video.readyState >= 3) playing = true;
      if (video.videoWidth > 0 && video.currentTime > 0) framed = true;
      check();
    }, PLAYING_CHECK_MS);
  });
}

/** Plays a WHEP output in a video element, retrying while it does not exist yet. */
export class WHEPPlayer {
  /**
   * @param {WHEPPlayerOptions} options
   * @param {import("./waits.js").Clock} [clock] injected clock (defaults to the browser's)
   */
  constructor(options, clock = BROWSER_CLOCK) {
    this.options = options;
    this.clock = clock;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** Offer of the current peer (re-posted as is while the output is missing). */
    this.offer = "";
    /** @type {string | null} */
    this.resourceUrl = null;
    /** The latest 2xx answer, until the machine says APPLY. @type {{ attempt: number, sdp: string, resource: string | null } | null} */
    this.answer = null;
    /** Aborts the current negotiation's async work; replaced with every new peer. */
    this.abort = new AbortController();
    /** @type {import("./whep-machine.js").WhepState} */
    this.machine = initialWhepState();
    /** @type {unknown} */
    this.timer = null;
    /** Total POST attempts made (for diagnostics). */
    this.attempts = 0;
  }

  /** Starts negotiating; returns at once. */
  start() {
    this.feed({ type: "START" });
  }

  /**
   * Feeds the decision machine, re-arms its TICK timer and executes its actions.
   * @param {import("./whep-machine.js").WhepEvent} event
   */
  feed(event) {
    const { state, actions } = whepStep(this.machine, event, this.clock.now());
    this.machine = state;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const at = whepDeadline(state);
    if (at !== null) {
      this.timer = this.clock.setTimeout(() => {
        this.timer = null;
        this.feed({ type: "TICK" });
      }, Math.max(0, at - this.clock.now()));
    }
    for (const action of actions) this.execute(action);
  }

  /** @param {import("./whep-machine.js").WhepAction} action */
  execute(action) {
    switch (action.type) {
      case "NEW_PEER":
        this.closePeer();
        void this.negotiate();
        break;
      case "POST":
        this.attempts++;
        void this.post(action.attempt);
        break;
      case "APPLY":
        void this.apply(action.attempt);
        break;
      case "CLOSE_PEER":
        this.closePeer();
        break;
      case "PLAYING":
        this.options.onPlaying?.();
        break;
      case "GIVE_UP":
        this.closePeer();
        this.options.onError?.(action.message);
        break;
    }
  }

  /** A fresh peer and its (non-trickle) offer; then OFFER_READY, or PEER_FAILED. */
  async negotiate() {
    const signal = this.abort.signal;
    try {
      const pc = new RTCPeerConnection({ iceServers: this.options.iceServers ?? [] });
      this.pc = pc;
      const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
      const caps = typeof RTCRtpReceiver !== "undefined" ? RTCRtpReceiver.getCapabilities?.("video") : null;
      if (caps && typeof transceiver.setCodecPreferences === "function") {
        try {
          transceiver.setCodecPreferences(preferH264(caps.codecs));
        } catch {
          // Keep the browser's order.
        }
      }
      pc.ontrack = (e) => {
        const video = this.options.video;
        video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
        void video.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === "failed" && this.pc === pc) this.feed({ type: "PEER_FAILED" });
      };
      const gathered = waitForGathering(pc, { budgetMs: GATHERING_BUDGET_MS, capMs: ICE_GATHERING_TIMEOUT_MS }, this.clock, signal);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered;
      if (signal.aborted) return;
      this.offer = pc.localDescription?.sdp ?? "";
      this.feed({ type: "OFFER_READY" });
    } catch (err) {
      if (!signal.aborted) this.feed({ type: "PEER_FAILED", reason: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * One POST of the offer; feeds ANSWER (a 2xx answer is kept for APPLY).
   * @param {number} attempt
   */
  async post(attempt) {
    const signal = this.abort.signal;
    const url = new URL(this.options.url, location.href).href;
    /** @type {import("./whep-machine.js").WhepEvent} */
    let event;
    try {
      const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: this.offer, signal });
      if (res.ok) {
        this.answer = { attempt, sdp: await res.text(), resource: resolveResourceUrl(res.headers.get("Location"), res.url || url) };
        event = { type: "ANSWER", attempt, status: res.status };
      } else {
        event = { type: "ANSWER", attempt, status: res.status, detail: await errorDetail(res) };
      }
    } catch {
      // Network error (or a body that broke off): status 0, retried.
      event = { type: "ANSWER", attempt, status: 0 };
    }
    if (!signal.aborted) this.feed(event);
  }

  /**
   * Applies attempt `attempt`'s answer; feeds PLAYING once frames show, or PEER_FAILED.
   * @param {number} attempt
   */
  async apply(attempt) {
    const signal = this.abort.signal;
    const pc = this.pc;
    const answer = this.answer;
    this.answer = null;
    if (!pc || !answer || answer.attempt !== attempt) return;
    this.resourceUrl = answer.resource;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } catch (err) {
      if (!signal.aborted) this.feed({ type: "PEER_FAILED", reason: err instanceof Error ? err.message : String(err) });
      return;
    }
    await waitForPlaying(this.options.video, signal);
    if (!signal.aborted && this.pc === pc) this.feed({ type: "PLAYING" });
  }

  /**
   * Drops the current peer: aborts its pending work, DELETEs the viewer resource, then
   * closes the peer once the DELETE is answered or after {@link DELETE_TIMEOUT_MS}
   * (DELETE first: a server that sees the closed peer first forgets the viewer and
   * answers 404). Returns at once.
   */
  closePeer() {
    this.abort.abort();
    this.abort = new AbortController();
    this.answer = null;
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
    }
    const resource = this.resourceUrl;
    this.resourceUrl = null;
    if (!pc) return;
    if (!resource) {
      pc.close();
      return;
    }
    const deleted = fetch(resource, { method: "DELETE", keepalive: true });
    void waitBounded(deleted, DELETE_TIMEOUT_MS, this.clock).then(() => pc.close());
  }

  /** Stops playback, closes the peer and DELETEs the viewer resource. */
  stop() {
    this.feed({ type: "STOP" });
    this.closePeer();
    const video = this.options.video;
    video.pause();
    video.srcObject = null;
  }
}

/**
 * The server's explanation of a failed POST (`message` of a JSON error body), if any.
 * @param {Response} res
 * @returns {Promise<string>}
 */
async function errorDetail(res) {
  try {
    const body = await res.json();
    return body && typeof body.message === "string" ? body.message : "";
  } catch {
    return "";
  }
}
