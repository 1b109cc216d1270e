// Capture helpers: constraints, cover crop, throttle, camera messages, permission pre-check.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  CAMERA_CONSTRAINTS,
  CAMERA_MESSAGES,
  cameraErrorMessage,
  cameraPermission,
  coverCrop,
  frameDue,
  precheckCamera,
} from "../static/lib/capture.js";

test("camera constraints: 640x480 ideal, 30 fps max, front camera, no audio", () => {
  assert.deepEqual(CAMERA_CONSTRAINTS, {
    video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { max: 30 }, facingMode: "user" },
    audio: false,
  });
});

test("cover crop: 640x480 into 512x512 takes the centred 480x480 square", () => {
  assert.deepEqual(coverCrop(640, 480, 512, 512), { sx: 80, sy: 0, sw: 480, sh: 480 });
  assert.deepEqual(coverCrop(480, 640, 512, 512), { sx: 0, sy: 80, sw: 480, sh: 480 });
  assert.deepEqual(coverCrop(512, 512, 512, 512), { sx: 0, sy: 0, sw: 512, sh: 512 });
  const wide = coverCrop(1920, 1080, 512, 512);
  assert.equal(wide.sw, 1080);
  assert.equal(wide.sx, 420);
  assert.deepEqual(coverCrop(0, 0, 512, 512), { sx: 0, sy: 0, sw: 0, sh: 0 });
});

test("draw throttle: ~30 fps from a 60 Hz (or faster) callback", () => {
  assert.equal(frameDue(0, null), true);
  // 60 Hz callbacks: every other one draws.
  let last = null;
  let draws = 0;
  for (let i = 0; i <= 60; i++) {
    const t = i * (1000 / 60);
    if (frameDue(t, last)) {
      last = t;
      draws++;
    }
  }
  assert.equal(draws, 31);
  // 144 Hz callbacks still give about 30 fps.
  last = null;
  draws = 0;
  for (let i = 0; i < 144; i++) {
    const t = i * (1000 / 144);
    if (frameDue(t, last)) {
      last = t;
      draws++;
    }
  }
  assert.ok(draws >= 28 && draws <= 36, `${draws}`);
});

test("camera error messages", () => {
  const err = (name) => Object.assign(new Error("x"), { name });
  assert.equal(cameraErrorMessage(err("NotAllowedError")), CAMERA_MESSAGES.DENIED);
  assert.match(CAMERA_MESSAGES.DENIED, /permission denied/i);
  assert.equal(cameraErrorMessage(err("NotFoundError")), CAMERA_MESSAGES.NOT_FOUND);
  assert.match(CAMERA_MESSAGES.NOT_FOUND, /no camera/i);
  assert.equal(cameraErrorMessage(err("NotReadableError")), CAMERA_MESSAGES.IN_USE);
  assert.match(CAMERA_MESSAGES.IN_USE, /in use/i);
  assert.equal(cameraErrorMessage(err("TypeError")), "Camera error: x");
  assert.equal(cameraErrorMessage("weird"), "Camera error: weird");
});

/** A getUserMedia stand-in that records calls and hands out stoppable tracks. */
function fakeMediaDevices(fail) {
  const calls = [];
  const tracks = [];
  return {
    calls,
    tracks,
    async getUserMedia(c) {
      calls.push(c);
      if (fail) throw Object.assign(new Error("denied"), { name: fail });
      const track = { readyState: "live", stop() { this.readyState = "ended"; } };
      tracks.push(track);
      return { getTracks: () => [track] };
    },
  };
}

test("permission pre-check: already granted -> no getUserMedia probe", async () => {
  const md = fakeMediaDevices();
  const permissions = { query: async () => ({ state: "granted" }) };
  assert.deepEqual(await precheckCamera(md, permissions), { probed: false });
  assert.equal(md.calls.length, 0);
});

test("permission pre-check: prompt/unknown -> one probe, released at once", async () => {
  for (const permissions of [{ query: async () => ({ state: "prompt" }) }, undefined, { query: async () => { throw new TypeError("camera not supported"); } }]) {
    const md = fakeMediaDevices();
    assert.deepEqual(await precheckCamera(md, permissions), { probed: true });
    assert.equal(md.calls.length, 1);
    assert.deepEqual(md.calls[0], CAMERA_CONSTRAINTS);
    assert.equal(md.tracks[0].readyState, "ended", "the probe never keeps the camera");
  }
});

test("permission pre-check: denied camera surfaces the getUserMedia error", async () => {
  const md = fakeMediaDevices("NotAllowedError");
  await assert.rejects(precheckCamera(md, { query: async () => ({ state: "denied" }) }), (e) => cameraErrorMessage(e) === CAMERA_MESSAGES.DENIED);
  await assert.rejects(precheckCamera(undefined, undefined), (e) => cameraErrorMessage(e) === CAMERA_MESSAGES.UNAVAILABLE);
  assert.equal(await cameraPermission({ query: async () => ({ state: "granted" }) }), "granted");
  assert.equal(await cameraPermission(undefined), "unknown");
});
