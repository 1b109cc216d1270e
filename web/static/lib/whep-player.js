// @ts-check
/**
 * WHEP (WebRTC-HTTP Egress Protocol) player: plays a stream's output in a `<video>`.
 *
 * The output exists only once the backend produces frames, so the POST answers 404 at
 * first; attempts follow `timing.js` {@link whepRetryDelay} (0, 200 ms x 10, then
 * 500 * 2^k up to 60 s, like Daydream's player). The same offer is re-posted (no answer
 * was applied, so it is still valid). If the connection later fails, the player starts
 * over with a fresh peer. "Playing" means the `playing` event fired AND a frame was
 * decoded (`requestVideoFrameCallback`, or a non-zero video size where unsupported).
 *
 * @module whep-player
 */

import { preferH264, resolveResourceUrl, waitForGathering } from "./whip-client.js";
import { GATHERING_BUDGET_MS, ICE_GATHERING_TIMEOUT_MS, whepRetryDelay, whepShouldRetry } from "./timing.js";

/**
 * @typedef {object} WHEPPlayerOptions
 * @property {string} url WHEP endpoint (the gateway path)
 * @property {HTMLVideoElement} video muted, autoplay, playsinline
 * @property {RTCIceServer[]} [iceServers] default none (the server's candidates are enough)
 * @property {() => void} [onPlaying] once per connection, when frames are on screen
 * @property {(message: string) => void} [onError] non-retryable failure
 * @property {(attempt: number, status: number) => void} [onRetry]
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
    }, 100);
  });
}

/** Plays a WHEP output in a video element, retrying while it does not exist yet. */
export class WHEPPlayer {
  /** @param {WHEPPlayerOptions} options */
  constructor(options) {
    this.options = options;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {string | null} */
    this.resourceUrl = null;
    /** @type {AbortController} */
    this.abort = new AbortController();
    this.stopped = false;
    /** Total POST attempts made (for diagnostics). */
    this.attempts = 0;
  }

  /** Starts (or restarts) negotiating; returns at once. */
  start() {
    void this.run().catch((err) => {
      if (!this.stopped) this.options.onError?.(err instanceof Error ? err.message : String(err));
    });
  }

  /** @param {number} ms */
  sleep(ms) {
    return new Promise((resolve) => {
      if (ms <= 0) return resolve(undefined);
      const signal = this.abort.signal;
      const onAbort = () => {
        clearTimeout(t);
        resolve(undefined);
      };
      const t = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve(undefined);
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  async run() {
    const signal = this.abort.signal;
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
      if (pc.connectionState === "failed" && this.pc === pc && !this.stopped) this.restart();
    };
    const clock = {
      now: () => performance.now(),
      setTimeout: (/** @type {() => void} */ fn, /** @type {number} */ ms) => setTimeout(fn, ms),
      clearTimeout: (/** @type {any} */ id) => clearTimeout(id),
    };
    const gathered = waitForGathering(pc, { budgetMs: GATHERING_BUDGET_MS, capMs: ICE_GATHERING_TIMEOUT_MS }, clock, signal);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered;
    const sdp = pc.localDescription?.sdp ?? "";
    const url = new URL(this.options.url, location.href).href;

    for (let attempt = 0; !signal.aborted; attempt++) {
      await this.sleep(whepRetryDelay(attempt));
      if (signal.aborted) return;
      this.attempts++;
      /** @type {Response | null} */
      let res = null;
      try {
        res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: sdp, signal });
      } catch {
        if (signal.aborted) return;
      }
      const status = res ? res.status : 0;
      if (res && res.status >= 200 && res.status < 300) {
        this.resourceUrl = resolveResourceUrl(res.headers.get("Location"), res.url || url);
        const answer = await res.text();
        if (signal.aborted) return;
        await pc.setRemoteDescription({ type: "answer", sdp: answer });
        await waitForPlaying(this.options.video, signal);
        if (!signal.aborted && this.pc === pc) this.options.onPlaying?.();
        return;
      }
      if (!whepShouldRetry(status)) {
        let message = `WHEP playback failed: ${status}`;
        try {
          const body = res ? await res.json() : null;
          if (body && typeof body.message === "string") message += ` (${body.message})`;
        } catch {
          // Not JSON.
        }
        throw new Error(message);
      }
      this.options.onRetry?.(attempt, status);
    }
  }

  /** Drops the current peer and negotiates again from scratch. */
  restart() {
    this.closePeer();
    this.abort.abort();
    this.abort = new AbortController();
    this.start();
  }

  /**
   * DELETEs the viewer resource, then closes the peer (DELETE first: a server that sees
   * the closed peer first forgets the viewer and answers 404). Returns at once.
   */
  closePeer() {
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      pc.ontrack = null;
      pc.onconnectionstatechange = null;
    }
    const resource = this.resourceUrl;
    this.resourceUrl = null;
    const close = () => pc?.close();
    if (!resource) {
      close();
      return;
    }
    const timer = setTimeout(close, 2000);
    void fetch(resource, { method: "DELETE", keepalive: true })
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        close();
      });
  }

  /** Stops playback, closes the peer and DELETEs the viewer resource. */
  stop() {
    this.stopped = true;
    this.abort.abort();
    this.closePeer();
    const video = this.options.video;
    video.pause();
    video.srcObject = null;
  }
}
