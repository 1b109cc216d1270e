// @ts-check
/**
 * The spec's "WHIP Client Reference" surface: options, connection states, injectable
 * platform, "Configuration Defaults" and the error table ("Error Codes & Recovery
 * Strategies", word for word). `whip-client.js` re-exports what callers use.
 *
 * @module whip-api
 */

import { CONNECTION_TIMEOUT_MS, ICE_GATHERING_TIMEOUT_MS } from "./timing.js";

/** Error messages (spec table "Error Codes & Recovery Strategies", word for word). */
export const WHIP_ERRORS = Object.freeze({
  ALREADY_CONNECTED: "WHIP client already has an active connection",
  NO_TRACKS: "MediaStream has no tracks",
  TRACK_NOT_LIVE: "Video track is not live",
  TIMEOUT: "Connection timed out",
  ICE_FAILED: "ICE connection failed",
  PEER_FAILED: "Peer connection failed",
  /** @param {number | string} status HTTP status (e.g. 503) or a network problem */
  offerFailed: (status) => `WHIP offer failed: ${status}`,
});

/** An error with the HTTP status that caused it (0: no HTTP answer). */
export class WHIPError extends Error {
  /**
   * @param {string} message
   * @param {number} [status]
   * @param {string} [detail] server's explanation, if any
   */
  constructor(message, status = 0, detail = "") {
    super(message);
    this.name = "WHIPError";
    this.status = status;
    this.detail = detail;
  }
}

/**
 * @typedef {object} WHIPConnectionOptions
 * @property {string} whipUrl WHIP endpoint (relative URLs resolve against the page)
 * @property {MediaStream} stream MediaStream with a video track
 * @property {RTCIceServer[]} [iceServers] default: Google STUN (the app passes the engine's in local mode)
 * @property {"all" | "relay"} [iceTransportPolicy] default "all"
 * @property {number} [connectionTimeout] ms, default 45000
 * @property {number} [iceGatheringTimeout] ms, hard cap on gathering, default 20000
 * @property {boolean} [enableTrickleICE] default true (the app passes false)
 * @property {number} [gatheringBudget] ms to wait for more candidates once one exists, default 1000
 */

/**
 * @typedef {object} WHIPConnectionState
 * @property {"connecting" | "connected" | "failed" | "disconnected" | "closed"} state
 * @property {string} [error]
 * @property {RTCIceConnectionState} [iceConnectionState]
 * @property {RTCIceGatheringState} [iceGatheringState]
 * @property {RTCSignalingState} [signallingState]
 */

/**
 * Injectable platform pieces (defaults: the browser's).
 * @typedef {object} WHIPPlatform
 * @property {(config: RTCConfiguration) => RTCPeerConnection} [createPeerConnection]
 * @property {typeof fetch} [fetch]
 * @property {() => number} [now]
 * @property {(fn: () => void, ms: number) => unknown} [setTimeout]
 * @property {(id: unknown) => void} [clearTimeout]
 * @property {string} [baseUrl] base for relative URLs (default: the page URL)
 * @property {(kind: string) => RTCRtpCapabilities | null} [senderCapabilities]
 */

/** Defaults (spec "Configuration Defaults"). */
export const DEFAULT_CONFIG = Object.freeze({
  iceServers: [{ urls: "stun:stun.l.google.com:19302" }],
  iceTransportPolicy: /** @type {"all" | "relay"} */ ("all"),
  connectionTimeout: CONNECTION_TIMEOUT_MS,
  iceGatheringTimeout: ICE_GATHERING_TIMEOUT_MS,
  enableTrickleICE: true,
});
