// Status bodies in both upstream shapes (runner and public reference), wrapped or bare.
import { test } from "node:test";
import assert from "node:assert/strict";

import { RECENT_OUTPUT_MS, readStatus } from "../static/lib/readers.js";

/** What our engine (and Daydream's runner) answers. */
const RUNNER = {
  type: "status",
  state: "ONLINE",
  timestamp: 1_700_000_010_000,
  input_status: { fps: 29.5, last_input_time: 1_700_000_009_990 },
  inference_status: {
    fps: 27.25,
    last_output_time: 1_700_000_009_995,
    last_params_update_time: 1_700_000_005_000,
    last_params: { model_id: "stabilityai/sd-turbo", prompt: "female cartoon" },
    last_params_hash: "00ff00ff00ff00ff",
    last_restart_time: null,
  },
  gateway_status: { whep_url: "http://127.0.0.1:1/v1/streams/str_a/whep" },
};

/** The public reference's shape: no state, no input_status, input/output fps under inference_status. */
const PUBLIC = {
  inference_status: {
    input_fps: 30,
    output_fps: 24,
    last_input_time: 1_700_000_009_990,
    last_output_time: 1_700_000_009_900,
    last_params: { prompt: "male cartoon" },
    last_params_hash: "abc",
    last_params_update_time: "2023-11-14T22:13:25.000Z",
    restart_count: 0,
    last_restart_time: 0,
  },
};

test("readStatus: the runner's shape, wrapped and bare", () => {
  for (const body of [{ success: true, error: null, data: RUNNER }, RUNNER]) {
    assert.deepEqual(readStatus(body), {
      active: true,
      whepUrl: "http://127.0.0.1:1/v1/streams/str_a/whep",
      shape: "runner",
      state: "ONLINE",
      inputFps: 29.5,
      outputFps: 27.25,
      lastOutputTime: 1_700_000_009_995,
      paramsHash: "00ff00ff00ff00ff",
      paramsUpdateTime: 1_700_000_005_000,
      lastPrompt: "female cartoon",
      restartTime: null,
    });
  }
  const loading = { ...RUNNER, state: "LOADING", inference_status: { fps: 0, last_output_time: null } };
  assert.equal(readStatus({ success: true, data: loading }).active, false);
  assert.equal(readStatus({ success: true, data: loading }).state, "LOADING");
  assert.equal(readStatus({ success: false, data: RUNNER }).active, false, "success:false is never active");
});

test("readStatus: the public reference's shape, wrapped and bare; live = output fps > 0 and a recent last output", () => {
  const now = 1_700_000_010_000;
  for (const body of [{ success: true, data: PUBLIC }, PUBLIC]) {
    const v = readStatus(body, now);
    assert.equal(v.shape, "public");
    assert.equal(v.active, true);
    assert.equal(v.state, null);
    assert.equal(v.inputFps, 30);
    assert.equal(v.outputFps, 24);
    assert.equal(v.paramsHash, "abc");
    assert.equal(v.paramsUpdateTime, Date.parse("2023-11-14T22:13:25.000Z"));
    assert.equal(v.lastPrompt, "male cartoon");
    assert.equal(v.restartTime, null, "0 is no time");
  }
  assert.equal(readStatus(PUBLIC, 1_700_000_009_900 + RECENT_OUTPUT_MS).active, true, "exactly at the limit");
  assert.equal(readStatus(PUBLIC, 1_700_000_009_901 + RECENT_OUTPUT_MS).active, false, "the last output is stale");
  assert.equal(readStatus(PUBLIC).active, true, "no clock: fps and a last output are enough");
  assert.equal(readStatus({ ...PUBLIC, timestamp: 1_700_000_060_000 }).active, false, "the body's own timestamp is the reference");
  const stopped = { inference_status: { ...PUBLIC.inference_status, output_fps: 0 } };
  assert.equal(readStatus(stopped, now).active, false, "no output fps");
  const never = { inference_status: { input_fps: 30, output_fps: 12, last_output_time: null } };
  assert.equal(readStatus(never, now).active, false, "no output yet");
  assert.equal(readStatus({ success: false, data: PUBLIC }, now).active, false);
});

test("readStatus: anything else says nothing", () => {
  for (const body of [null, undefined, "ONLINE", 5, [], [RUNNER], { success: true, data: null }]) {
    const v = readStatus(body);
    assert.equal(v.active, false, JSON.stringify(body));
    assert.equal(v.paramsHash, null);
  }
  assert.equal(readStatus({ inference_status: { fps: "fast", last_params_hash: 7 } }).outputFps, null);
  assert.equal(readStatus({ inference_status: { fps: "fast", last_params_hash: 7 } }).paramsHash, null);
});
