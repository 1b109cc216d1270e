// Stats panel figures and verdict, and the recording clock: pure, on injected samples and time.
import { test } from "node:test";
import assert from "node:assert/strict";

import { figureLines, figures, readSample, verdict } from "../static/lib/stats.js";
import { RECORD_LIMIT_MS, keepFileName, pickWebmType, recordingClock } from "../static/lib/recording.js";

/** getStats-like reports of the two peers after `s` seconds at the given rates. */
function reports(s, { inFps = 30, outFps = 28, upBps = 250_000, downBps = 200_000, upLost = 0, downLost = 0 } = {}) {
  const up = [
    { type: "outbound-rtp", kind: "video", framesSent: inFps * s, bytesSent: (upBps / 8) * s, packetsSent: 100 * s },
    { type: "remote-inbound-rtp", kind: "video", packetsLost: upLost * s, roundTripTime: 0.02 },
    { type: "candidate-pair", nominated: true, state: "succeeded", currentRoundTripTime: 0.5 },
  ];
  const down = [
    { type: "inbound-rtp", kind: "video", framesDecoded: outFps * s, bytesReceived: (downBps / 8) * s, packetsReceived: 100 * s, packetsLost: downLost * s, jitterBufferDelay: 0.05 * outFps * s, jitterBufferEmittedCount: outFps * s },
    { type: "candidate-pair", nominated: true, state: "succeeded", currentRoundTripTime: 0.01 },
    { type: "codec", mimeType: "video/H264" },
  ];
  return [up, down];
}

const sample = (s, rates) => readSample(...reports(s, rates), s * 1000);
const STEADY = { state: "ONLINE", pushedPhase: null, restarting: false };

test("figures: fps, bitrate, round trip, loss and an estimated latency from two samples", () => {
  const f = figures(sample(10), sample(12));
  assert.equal(f.inputFps, 30);
  assert.equal(f.outputFps, 28);
  assert.equal(f.upKbps, 250);
  assert.equal(f.downKbps, 200);
  assert.equal(f.rttMs, 20, "remote-inbound RTT for the upload, the candidate pair for the download: the larger");
  assert.equal(f.lossPct, 0);
  // 20/2 + 10/2 + 50 ms jitter buffer + one frame at 28 fps.
  assert.ok(Math.abs(/** @type {number} */ (f.latencyMs) - (10 + 5 + 50 + 1000 / 28)) < 1e-9);
  const lossy = figures(sample(10, { downLost: 5 }), sample(12, { downLost: 5 }));
  assert.ok(Math.abs(/** @type {number} */ (lossy.lossPct) - (100 * 10) / 210) < 1e-9);
});

test("figures: one sample, missing peers, counters that went back: unknown, never made up", () => {
  const first = figures(null, sample(3));
  assert.equal(first.inputFps, null);
  assert.equal(first.outputFps, null);
  const none = figures(readSample(null, null, 0), readSample(null, null, 1000));
  assert.deepEqual(none, { inputFps: null, outputFps: null, upKbps: null, downKbps: null, rttMs: null, lossPct: null, latencyMs: null });
  assert.equal(figures(sample(12), sample(10)).inputFps, null, "a new peer restarts its counters");
  assert.deepEqual(figureLines(none).map(([, v]) => v), ["—", "—", "—", "—", "—", "—", "—"]);
  assert.deepEqual(figureLines(figures(sample(1), sample(2))).slice(0, 2), [["Input sent", "30.0 fps"], ["Output received", "28.0 fps"]]);
});

test("verdict: good / fair / poor with the limiting factor in plain words", () => {
  const at = (rates, c = STEADY) => verdict(figures(sample(10, rates), sample(11, rates)), c);
  assert.deepEqual(at({}), { verdict: "good", reason: "frames flow at full rate both ways" });
  assert.deepEqual(at({ inFps: 8, outFps: 8 }), { verdict: "poor", reason: "your upload is sending 8 fps" });
  assert.deepEqual(at({ inFps: 15 }), { verdict: "fair", reason: "your upload is sending 15 fps" });
  assert.deepEqual(at({ outFps: 12 }), { verdict: "fair", reason: "the output arrives at 12 fps" });
  assert.deepEqual(at({ inFps: 15, outFps: 5 }), { verdict: "poor", reason: "the output arrives at 5 fps" }, "the worst factor wins");
  assert.deepEqual(at({ downLost: 10 }), { verdict: "poor", reason: "9.1% of the packets are lost" });
  assert.deepEqual(at({}, { ...STEADY, restarting: true }), { verdict: "poor", reason: "the stream is restarting its pipeline" });
  assert.deepEqual(at({}, { state: "LOADING", pushedPhase: null, restarting: false }).reason, "the stream is restarting its pipeline");
  assert.deepEqual(at({}, { state: null, pushedPhase: "degraded", restarting: false }), { verdict: "fair", reason: "the stream reports it is degraded" });
});

test("recording clock: a label per second, done at the limit, exact next wake-up", () => {
  assert.deepEqual(recordingClock(1000, 1000), { label: "0:00 / 1:00", done: false, nextAt: 2000 });
  assert.deepEqual(recordingClock(1000, 1999), { label: "0:00 / 1:00", done: false, nextAt: 2000 });
  assert.deepEqual(recordingClock(1000, 2000), { label: "0:01 / 1:00", done: false, nextAt: 3000 });
  assert.deepEqual(recordingClock(0, RECORD_LIMIT_MS - 1), { label: "0:59 / 1:00", done: false, nextAt: RECORD_LIMIT_MS });
  assert.deepEqual(recordingClock(0, RECORD_LIMIT_MS), { label: "1:00 / 1:00", done: true, nextAt: null });
  // Every wake-up changes the label or ends it (no spinning).
  let t = 0;
  const labels = [];
  for (let c = recordingClock(0, t); !c.done; c = recordingClock(0, t)) {
    labels.push(c.label);
    assert.ok(c.nextAt !== null && c.nextAt > t);
    t = c.nextAt;
  }
  assert.equal(new Set(labels).size, labels.length);
  assert.equal(labels.length, 60);
});

test("keep: WebM type preference and file names", () => {
  assert.equal(pickWebmType((t) => t === "video/webm;codecs=vp8" || t === "video/webm"), "video/webm;codecs=vp8");
  assert.equal(pickWebmType(() => false), null);
  assert.equal(keepFileName("png", new Date(2025, 0, 31, 12, 5, 9)), "dream-2025-01-31-12-05-09.png");
});
