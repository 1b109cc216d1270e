// @ts-check
/**
 * Figures and a verdict for the stats panel, from WebRTC `getStats()` and the stream's status.
 * Pure module: the shell (`stats-panel.js`) takes the samples, this reads them.
 *
 * - {@link readSample}: the few counters the panel needs from the publishing (WHIP) and the
 *   playing (WHEP) peer's stats reports;
 * - {@link figures}: rates between two samples (fps each way, bitrate each way, packet loss),
 *   round-trip times, and an ESTIMATED capture-to-display latency: half of each round trip,
 *   the receiver's jitter buffer, and one output frame of processing;
 * - {@link verdict}: good / fair / poor and the limiting factor in plain words.
 *
 * @module stats
 */

/**
 * Cumulative counters at one moment (null: not reported).
 * @typedef {object} Sample
 * @property {number} at ms (the stats' own timestamp)
 * @property {number | null} framesSent WHIP outbound video frames sent
 * @property {number | null} bytesSent
 * @property {number | null} packetsSent
 * @property {number | null} upLost packets the server reports lost (remote-inbound)
 * @property {number | null} upRttMs WHIP round trip
 * @property {number | null} framesDecoded WHEP inbound video frames decoded
 * @property {number | null} bytesReceived
 * @property {number | null} packetsReceived
 * @property {number | null} downLost
 * @property {number | null} downRttMs WHEP round trip
 * @property {number | null} jitterDelayS cumulative jitter buffer delay (s)
 * @property {number | null} jitterEmitted frames out of the jitter buffer
 */

/** @param {unknown} v */
const n = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/**
 * The counters of one moment from the two peers' stats (an `RTCStatsReport`'s values, or any
 * iterable of stats dictionaries; null: that peer does not exist).
 * @param {Iterable<Record<string, any>> | null} up the WHIP peer's stats
 * @param {Iterable<Record<string, any>> | null} down the WHEP peer's stats
 * @param {number} at
 * @returns {Sample}
 */
export function readSample(up, down, at) {
  /** @type {Sample} */
  const s = { at, framesSent: null, bytesSent: null, packetsSent: null, upLost: null, upRttMs: null, framesDecoded: null, bytesReceived: null, packetsReceived: null, downLost: null, downRttMs: null, jitterDelayS: null, jitterEmitted: null };
  /** @param {Record<string, any>} r */
  const pairRtt = (r) => (r.type === "candidate-pair" && (r.nominated || r.selected) && r.state === "succeeded" && n(r.currentRoundTripTime) !== null ? r.currentRoundTripTime * 1000 : null);
  for (const r of up ?? []) {
    if (r.type === "outbound-rtp" && r.kind === "video") {
      s.framesSent = n(r.framesSent) ?? n(r.framesEncoded);
      s.bytesSent = n(r.bytesSent);
      s.packetsSent = n(r.packetsSent);
    } else if (r.type === "remote-inbound-rtp" && r.kind === "video") {
      s.upLost = n(r.packetsLost);
      if (n(r.roundTripTime) !== null) s.upRttMs = r.roundTripTime * 1000;
    } else if (s.upRttMs === null) s.upRttMs = pairRtt(r);
  }
  for (const r of down ?? []) {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      s.framesDecoded = n(r.framesDecoded);
      s.bytesReceived = n(r.bytesReceived);
      s.packetsReceived = n(r.packetsReceived);
      s.downLost = n(r.packetsLost);
      s.jitterDelayS = n(r.jitterBufferDelay);
      s.jitterEmitted = n(r.jitterBufferEmittedCount);
    } else if (s.downRttMs === null) s.downRttMs = pairRtt(r);
  }
  return s;
}

/**
 * @typedef {object} Figures
 * @property {number | null} inputFps frames per second sent (the camera's upload)
 * @property {number | null} outputFps frames per second received and decoded
 * @property {number | null} upKbps
 * @property {number | null} downKbps
 * @property {number | null} rttMs the larger of the two round trips
 * @property {number | null} lossPct packets lost, the worse direction, in %
 * @property {number | null} latencyMs estimated capture-to-display latency
 */

/**
 * Rates between two samples (`prev` null: only what a single sample says).
 * @param {Sample | null} prev
 * @param {Sample} cur
 * @returns {Figures}
 */
export function figures(prev, cur) {
  const dt = prev ? (cur.at - prev.at) / 1000 : 0;
  /** @param {(s: Sample) => number | null} f */
  const rate = (f) => {
    if (!prev || dt <= 0) return null;
    const a = f(prev);
    const b = f(cur);
    return a === null || b === null || b < a ? null : (b - a) / dt;
  };
  /** @param {number | null} lost @param {number | null} total */
  const pct = (lost, total) => (lost === null || total === null || total <= 0 ? null : (100 * Math.max(0, lost)) / total);
  /** @param {(s: Sample) => number | null} f */
  const delta = (f) => {
    const a = prev ? f(prev) : 0;
    const b = f(cur);
    return a === null || b === null ? null : b - a;
  };
  const upLoss = pct(delta((s) => s.upLost), delta((s) => s.packetsSent));
  const dLost = delta((s) => s.downLost);
  const dRecv = delta((s) => s.packetsReceived);
  const downLoss = pct(dLost, dLost === null || dRecv === null ? null : dRecv + Math.max(0, dLost));
  const losses = [upLoss, downLoss].filter(/** @returns {x is number} */ (x) => x !== null);
  const rtts = [cur.upRttMs, cur.downRttMs].filter(/** @returns {x is number} */ (x) => x !== null);
  const outputFps = rate((s) => s.framesDecoded);
  const upKbps = rate((s) => s.bytesSent);
  const downKbps = rate((s) => s.bytesReceived);
  const emitted = delta((s) => s.jitterEmitted);
  const jitterS = delta((s) => s.jitterDelayS);
  const jitterMs = emitted !== null && emitted > 0 && jitterS !== null ? (1000 * jitterS) / emitted : null;
  let latencyMs = null;
  if (rtts.length > 0 || jitterMs !== null) {
    latencyMs = (cur.upRttMs ?? 0) / 2 + (cur.downRttMs ?? 0) / 2 + (jitterMs ?? 0) + (outputFps && outputFps > 0 ? 1000 / outputFps : 0);
  }
  return {
    inputFps: rate((s) => s.framesSent),
    outputFps,
    upKbps: upKbps === null ? null : (upKbps * 8) / 1000,
    downKbps: downKbps === null ? null : (downKbps * 8) / 1000,
    rttMs: rtts.length ? Math.max(...rtts) : null,
    lossPct: losses.length ? Math.max(...losses) : null,
    latencyMs,
  };
}

/**
 * What the stream itself says, for the verdict.
 * @typedef {object} StreamCondition
 * @property {string | null} state the status's `state` (runner shape)
 * @property {import("./readers.js").StreamPhase | null} pushedPhase the event stream's phase
 * @property {boolean} restarting the pipeline is (re)loading: a recent restart or a params reload
 */

/**
 * Good / fair / poor and the one limiting factor, in plain words. Checked worst first:
 * the pipeline restarting, the upload's frame rate, the output's frame rate, packet loss,
 * round trip.
 * @param {Figures} f
 * @param {StreamCondition} c
 * @returns {{ verdict: "good" | "fair" | "poor", reason: string }}
 */
export function verdict(f, c) {
  if (c.restarting || c.state === "LOADING" || c.pushedPhase === "warming" || c.pushedPhase === "reconnecting") {
    return { verdict: "poor", reason: "the stream is restarting its pipeline" };
  }
  /** @type {{ verdict: "fair" | "poor", reason: string }[]} */
  const found = [];
  const fps = (/** @type {number} */ x) => Math.round(x);
  if (f.inputFps !== null && f.inputFps < 20) found.push({ verdict: f.inputFps < 10 ? "poor" : "fair", reason: `your upload is sending ${fps(f.inputFps)} fps` });
  if (f.outputFps !== null && f.outputFps < 20) found.push({ verdict: f.outputFps < 10 ? "poor" : "fair", reason: `the output arrives at ${fps(f.outputFps)} fps` });
  if (f.lossPct !== null && f.lossPct >= 1) found.push({ verdict: f.lossPct >= 5 ? "poor" : "fair", reason: `${f.lossPct.toFixed(1)}% of the packets are lost` });
  if (f.rttMs !== null && f.rttMs >= 150) found.push({ verdict: f.rttMs >= 400 ? "poor" : "fair", reason: `the network round trip takes ${Math.round(f.rttMs)} ms` });
  if (c.state?.startsWith("DEGRADED") || c.pushedPhase === "degraded") found.push({ verdict: "fair", reason: "the stream reports it is degraded" });
  const worst = found.find((x) => x.verdict === "poor") ?? found[0];
  return worst ?? { verdict: "good", reason: "frames flow at full rate both ways" };
}

/**
 * The figures as the panel's lines (label, value), "—" where unknown.
 * @param {Figures} f
 * @returns {[string, string][]}
 */
export function figureLines(f) {
  /** @param {number | null} v @param {(v: number) => string} fmt */
  const show = (v, fmt) => (v === null ? "—" : fmt(v));
  return [
    ["Input sent", show(f.inputFps, (v) => `${v.toFixed(1)} fps`)],
    ["Output received", show(f.outputFps, (v) => `${v.toFixed(1)} fps`)],
    ["Upload", show(f.upKbps, (v) => `${Math.round(v)} kbit/s`)],
    ["Download", show(f.downKbps, (v) => `${Math.round(v)} kbit/s`)],
    ["Round trip", show(f.rttMs, (v) => `${Math.round(v)} ms`)],
    ["Packet loss", show(f.lossPct, (v) => `${v.toFixed(1)} %`)],
    ["Latency (est.)", show(f.latencyMs, (v) => `${Math.round(v)} ms`)],
  ];
}
