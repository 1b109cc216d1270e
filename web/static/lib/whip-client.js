// @ts-check
/**
 * WHIP (WebRTC-HTTP Ingestion Protocol) client: publishes a MediaStream to a WHIP endpoint.
 *
 * API and error messages follow the spec's "WHIP Client Reference" word for word:
 * `new WHIPClient(options)`, `connect()`, `disconnect()`, `onConnectionStateChange(cb)`,
 * `getPeerConnection()`, states connecting / connected / failed / disconnected / closed.
 *
 * Behaviour:
 * - H.264 is preferred (`setCodecPreferences`, constrained baseline packetization-mode 1 first).
 * - Trickle ICE off: the offer goes out as soon as ICE gathering completes, or once
 *   {@link GATHERING_BUDGET_MS} (1 s, like Daydream's official client) has passed with at
 *   least one candidate; `iceGatheringTimeout` (20 s) is only the hard cap for "no
 *   candidate at all". A STUN server that cannot be reached never holds the offer for 20 s.
 * - Trickle ICE on (the class default, as in the spec): the offer goes out at once and
 *   candidates follow as `application/trickle-ice-sdpfrag` PATCHes to the resource; a 405
 *   (Livepeer) stops trickling silently.
 * - The answer's `Link: <...>; rel="ice-server"` entries are applied with
 *   `setConfiguration` so ICE restarts use the server's STUN/TURN (for the first offer the
 *   client's own `iceServers` are used: a non-trickle offer cannot wait for the answer).
 * - `Location` (resolved against the request URL) is the session resource; `disconnect()`
 *   DELETEs it. `Livepeer-Playback-URL` is kept as {@link WHIPClient#playbackUrl}.
 * - Timing decisions live in the pure `timing.js` (driven by `waits.js`); header and SDP
 *   helpers in `signalling.js`; the spec's options, defaults and error table in
 *   `whip-api.js`. Clock, fetch and RTCPeerConnection can be injected (unit tests).
 *
 * @module whip-client
 */

import { DELETE_TIMEOUT_MS, GATHERING_BUDGET_MS, connectTimedOut } from "./timing.js";
import { DEFAULT_CONFIG, WHIPError, WHIP_ERRORS } from "./whip-api.js";
import { buildSdpFrag, iceCredentials, parseLinkHeader, preferH264, resolveResourceUrl } from "./signalling.js";
import { waitBounded, waitForGathering } from "./waits.js";

export { DELETE_TIMEOUT_MS, DEFAULT_CONFIG, WHIPError, WHIP_ERRORS };

/** @typedef {import("./whip-api.js").WHIPConnectionOptions} WHIPConnectionOptions */
/** @typedef {import("./whip-api.js").WHIPConnectionState} WHIPConnectionState */
/** @typedef {import("./whip-api.js").WHIPPlatform} WHIPPlatform */

/** Publishes a MediaStream over WHIP. One client per stream and connection. */
export class WHIPClient {
  /**
   * @param {WHIPConnectionOptions} options
   * @param {WHIPPlatform} [platform] injected browser APIs (tests); defaults to the globals
   */
  constructor(options, platform = {}) {
    this.options = {
      ...DEFAULT_CONFIG,
      ...options,
      iceServers: options.iceServers ?? DEFAULT_CONFIG.iceServers,
      gatheringBudget: options.gatheringBudget ?? GATHERING_BUDGET_MS,
    };
    const g = /** @type {any} */ (globalThis);
    this.platform = {
      createPeerConnection: platform.createPeerConnection ?? ((/** @type {RTCConfiguration} */ c) => new RTCPeerConnection(c)),
      fetch: platform.fetch ?? ((/** @type {Parameters<typeof fetch>} */ ...a) => fetch(...a)),
      now: platform.now ?? (() => (typeof performance !== "undefined" ? performance.now() : Date.now())),
      setTimeout: platform.setTimeout ?? ((/** @type {() => void} */ fn, /** @type {number} */ ms) => setTimeout(fn, ms)),
      clearTimeout: platform.clearTimeout ?? ((/** @type {any} */ id) => clearTimeout(id)),
      baseUrl: platform.baseUrl ?? (g.location ? String(g.location.href) : "http://127.0.0.1/"),
      senderCapabilities:
        platform.senderCapabilities ??
        ((/** @type {string} */ kind) => (typeof RTCRtpSender !== "undefined" && RTCRtpSender.getCapabilities ? RTCRtpSender.getCapabilities(kind) : null)),
    };
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** Session resource URL (from `Location`), once known. @type {string | null} */
    this.resourceUrl = null;
    /** Output WHEP URL from `Livepeer-Playback-URL`, if the server sent one. @type {string | null} */
    this.playbackUrl = null;
    /** ICE servers from the answer's `Link` header. @type {RTCIceServer[]} */
    this.linkIceServers = [];
    /** Why the offer was released: gathering "complete", "budget", "cap", or "trickle". @type {string | null} */
    this.offerReason = null;
    /** @type {((state: WHIPConnectionState) => void)[]} */
    this.listeners = [];
    this.intentionalClose = false;
    /** @type {WHIPConnectionState["state"] | null} */
    this.lastState = null;
    /** @type {AbortController | null} */
    this.abort = null;
    /** @type {unknown} */
    this.timeoutTimer = null;
    /** @type {string[]} */
    this.pendingCandidates = [];
    this.trickleDisabled = false;
    /** First failure reason of the current connection. @type {string | null} */
    this.failure = null;
  }

  /** @param {(state: WHIPConnectionState) => void} callback */
  onConnectionStateChange(callback) {
    this.listeners.push(callback);
  }

  /** @returns {RTCPeerConnection | null} */
  getPeerConnection() {
    return this.pc;
  }

  /**
   * @param {WHIPConnectionState["state"]} state
   * @param {string} [error]
   */
  emit(state, error) {
    if (this.intentionalClose && state !== "closed") return;
    if (state === this.lastState && state !== "failed") return;
    if (state === "failed" && this.lastState === "failed") return;
    this.lastState = state;
    const pc = this.pc;
    /** @type {WHIPConnectionState} */
    const snapshot = { state };
    if (error !== undefined) snapshot.error = error;
    if (pc) {
      snapshot.iceConnectionState = pc.iceConnectionState;
      snapshot.iceGatheringState = pc.iceGatheringState;
      snapshot.signallingState = pc.signalingState;
    }
    for (const cb of this.listeners) {
      try {
        cb(snapshot);
      } catch {
        // A listener's bug must not break the connection.
      }
    }
  }

  /**
   * Establishes the WebRTC connection: offer -> POST -> answer. Resolves once the answer
   * is applied; "connected"/"failed" follow through {@link onConnectionStateChange}.
   *
   * @returns {Promise<void>}
   * @throws {WHIPError} see {@link WHIP_ERRORS}
   */
  async connect() {
    if (this.pc) throw new WHIPError(WHIP_ERRORS.ALREADY_CONNECTED);
    const stream = this.options.stream;
    if (stream.getTracks().length === 0) throw new WHIPError(WHIP_ERRORS.NO_TRACKS);
    const video = stream.getVideoTracks()[0];
    if (!video || video.readyState !== "live") throw new WHIPError(WHIP_ERRORS.TRACK_NOT_LIVE);

    this.intentionalClose = false;
    this.lastState = null;
    this.failure = null;
    const p = this.platform;
    const pc = p.createPeerConnection({
      iceServers: this.options.iceServers,
      iceTransportPolicy: this.options.iceTransportPolicy,
    });
    this.pc = pc;
    this.abort = new AbortController();
    this.emit("connecting");
    this.armConnectTimeout(p.now());

    pc.onconnectionstatechange = () => {
      switch (pc.connectionState) {
        case "connected":
          this.clearTimeout();
          this.emit("connected");
          break;
        case "failed":
          this.fail(WHIP_ERRORS.PEER_FAILED);
          break;
        case "disconnected":
          this.emit("disconnected");
          break;
        case "closed":
          this.emit("closed");
          break;
        default:
          break;
      }
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === "failed") this.fail(WHIP_ERRORS.ICE_FAILED);
    };

    try {
      for (const track of stream.getTracks()) {
        const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
        if (track.kind === "video") this.preferH264(transceiver);
      }
      const trickle = this.options.enableTrickleICE;
      const gathered = trickle
        ? null
        : waitForGathering(pc, { budgetMs: this.options.gatheringBudget, capMs: this.options.iceGatheringTimeout }, this.platform, this.abort.signal);
      if (trickle) {
        pc.onicecandidate = (e) => this.onTrickleCandidate(e.candidate);
      }
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      this.offerReason = trickle ? "trickle" : await /** @type {Promise<string>} */ (gathered);
      this.throwIfClosed();
      const sdp = pc.localDescription?.sdp ?? offer.sdp ?? "";
      const answer = await this.postOffer(sdp);
      this.throwIfClosed();
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      this.throwIfClosed();
      if (trickle) void this.flushCandidates();
    } catch (err) {
      const error = err instanceof WHIPError ? err : new WHIPError(this.failure ?? String(err instanceof Error ? err.message : err));
      if (!this.intentionalClose) {
        this.emit("failed", error.message);
        this.teardownPeer();
      }
      throw error;
    }
  }

  /** @param {string} message */
  fail(message) {
    if (this.intentionalClose || !this.pc) return;
    this.failure ??= message;
    this.clearTimeout();
    this.abort?.abort();
    this.emit("failed", message);
  }

  /**
   * Arms the connection timeout: a timer at the deadline feeds `timing.js`
   * `connectTimedOut` (re-armed if it fired early).
   * @param {number} startedAt
   */
  armConnectTimeout(startedAt) {
    const p = this.platform;
    const limit = this.options.connectionTimeout;
    const check = () => {
      this.timeoutTimer = null;
      if (connectTimedOut(startedAt, p.now(), limit)) this.fail(WHIP_ERRORS.TIMEOUT);
      else this.timeoutTimer = p.setTimeout(check, Math.max(1, startedAt + limit - p.now()));
    };
    this.timeoutTimer = p.setTimeout(check, Math.max(0, startedAt + limit - p.now()));
  }

  clearTimeout() {
    if (this.timeoutTimer !== null) {
      this.platform.clearTimeout(this.timeoutTimer);
      this.timeoutTimer = null;
    }
  }

  throwIfClosed() {
    if (this.intentionalClose) throw new WHIPError("WHIP client was disconnected");
    if (this.failure !== null) throw new WHIPError(this.failure);
  }

  /** @param {RTCRtpTransceiver} transceiver */
  preferH264(transceiver) {
    const caps = this.platform.senderCapabilities("video");
    if (!caps || typeof transceiver.setCodecPreferences !== "function") return;
    try {
      transceiver.setCodecPreferences(preferH264(caps.codecs));
    } catch {
      // Older browsers reject some orders; the default order still works.
    }
  }

  /**
   * POSTs the offer; returns the answer SDP. Records Location, Link and
   * Livepeer-Playback-URL.
   * @param {string} sdp
   * @returns {Promise<string>}
   */
  async postOffer(sdp) {
    const url = new URL(this.options.whipUrl, this.platform.baseUrl).href;
    /** @type {Response} */
    let res;
    try {
      res = await this.platform.fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: sdp,
        signal: this.abort?.signal,
      });
    } catch (err) {
      if (this.abort?.signal.aborted) throw new WHIPError(this.intentionalClose ? "WHIP client was disconnected" : (this.failure ?? WHIP_ERRORS.TIMEOUT));
      throw new WHIPError(WHIP_ERRORS.offerFailed("network error"), 0, String(err instanceof Error ? err.message : err));
    }
    if (!res.ok) {
      let detail = "";
      try {
        detail = await res.text();
      } catch {
        // No body.
      }
      throw new WHIPError(WHIP_ERRORS.offerFailed(res.status), res.status, detail);
    }
    const base = res.url || url;
    this.resourceUrl = resolveResourceUrl(res.headers.get("Location"), base);
    const playback = res.headers.get("Livepeer-Playback-URL");
    this.playbackUrl = playback ? resolveResourceUrl(playback, base) : null;
    this.linkIceServers = parseLinkHeader(res.headers.get("Link"));
    if (this.linkIceServers.length > 0 && this.pc) {
      try {
        // Used by ICE restarts; the current offer already carries its candidates.
        this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: this.linkIceServers });
      } catch {
        // Some browsers refuse changes they consider incompatible; keep the old servers.
      }
    }
    return await res.text();
  }

  /** @param {RTCIceCandidate | null} candidate */
  onTrickleCandidate(candidate) {
    if (this.trickleDisabled) return;
    if (candidate && candidate.candidate) this.pendingCandidates.push(candidate.candidate);
    if (this.resourceUrl) void this.flushCandidates(candidate === null);
  }

  /** @param {boolean} [end] */
  async flushCandidates(end = false) {
    const pc = this.pc;
    if (!pc || !this.resourceUrl || this.trickleDisabled) return;
    if (this.pendingCandidates.length === 0 && !end) return;
    const candidates = this.pendingCandidates.splice(0);
    const sdp = pc.localDescription?.sdp ?? "";
    const { ufrag, pwd } = iceCredentials(sdp);
    const mid = pc.getTransceivers()[0]?.mid ?? "0";
    try {
      const res = await this.platform.fetch(this.resourceUrl, {
        method: "PATCH",
        headers: { "Content-Type": "application/trickle-ice-sdpfrag" },
        body: buildSdpFrag({ ufrag, pwd, mid, candidates, end }),
      });
      if (res.status === 405 || res.status === 501) this.trickleDisabled = true;
    } catch {
      // Trickle is best effort: the offer already carried what it had.
    }
  }

  /** Removes the peer's event handlers (no more state events from it). */
  detachPeer() {
    const pc = this.pc;
    if (pc) {
      pc.onconnectionstatechange = null;
      pc.oniceconnectionstatechange = null;
      pc.onicecandidate = null;
    }
  }

  teardownPeer() {
    this.clearTimeout();
    this.detachPeer();
    const pc = this.pc;
    this.pc = null;
    if (pc) {
      try {
        pc.close();
      } catch {
        // Already closed.
      }
    }
  }

  /**
   * Ends the session: marks the close as intentional, removes the peer's handlers, stops
   * the tracks, DELETEs the resource (errors ignored, at most {@link DELETE_TIMEOUT_MS}),
   * closes the peer, clears state. Safe to call more than once and during `connect()`.
   *
   * The DELETE goes out before the peer closes: a server that notices the closed peer
   * first drops the session and would answer the DELETE with 404.
   *
   * @returns {Promise<void>}
   */
  async disconnect() {
    this.intentionalClose = true;
    this.abort?.abort();
    this.clearTimeout();
    this.detachPeer();
    for (const track of this.options.stream.getTracks()) track.stop();
    const resource = this.resourceUrl;
    this.resourceUrl = null;
    this.pendingCandidates = [];
    if (resource) {
      // Best effort (errors ignored): the server reaps idle sessions.
      await waitBounded(this.platform.fetch(resource, { method: "DELETE", keepalive: true }), DELETE_TIMEOUT_MS, this.platform);
    }
    this.teardownPeer();
    this.emit("closed");
  }
}
