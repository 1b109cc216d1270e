// The lifecycle's reducers one concern at a time, its deadlines (a shell that sleeps until
// nextDeadline sees exactly what a 100 ms ticker sees), and the response readers.
import { test } from "node:test";
import assert from "node:assert/strict";

import { DEFAULT_OPTIONS, MESSAGES, createLifecycle, initialState, nextDeadline, tickDelay } from "../static/lib/lifecycle.js";
import { stream } from "../static/lib/lifecycle/stream.js";
import { publish } from "../static/lib/lifecycle/publish.js";
import { connectionLost, watch } from "../static/lib/lifecycle/watch.js";
import { output } from "../static/lib/lifecycle/output.js";
import { patchGateOpen, updates } from "../static/lib/lifecycle/updates.js";
import { activeStreamIdOf, errorMessage, readConfig, readStatus } from "../static/lib/readers.js";

const PROMPT = "androgynous cartoon magical dj blue sparkle";

/**
 * A whole state with some slices changed: `{ phase: "live", output: { playing: true } }`.
 * @param {Record<string, any>} [patch]
 */
function stateWith(patch = {}) {
  const s = /** @type {Record<string, any>} */ (initialState(PROMPT));
  for (const [key, value] of Object.entries(patch)) s[key] = value !== null && typeof value === "object" ? { ...s[key], ...value } : value;
  return /** @type {import("../static/lib/lifecycle.js").LifecycleState} */ (s);
}

/** @param {ReturnType<typeof stateWith>} state */
const ctx = (state, options = DEFAULT_OPTIONS) => ({ state, options });
const types = (actions) => actions.map((a) => a.type);

test("stream: a 409 deletes the old stream once; the second create failure fails with the gateway's message", () => {
  const state = stateWith({ phase: "creating", session: 3 });
  const first = stream(state.stream, { type: "CREATE_FAILED", session: 3, status: 409, message: "busy", activeStreamId: "str_old" }, 0, ctx(state));
  assert.deepEqual(first.actions, [{ type: "DELETE_STREAM", session: 3, id: "str_old" }]);
  const retried = stream(first.slice, { type: "DELETED", session: 3, id: "str_other" }, 0, ctx(state));
  assert.deepEqual(retried.actions, [], "only the stream being replaced");
  const second = stream(first.slice, { type: "CREATE_FAILED", session: 3, status: 409, message: "busy", activeStreamId: "str_old2" }, 0, ctx(state));
  assert.deepEqual(second.actions, [{ type: "FAIL", message: "Could not create the Dream stream: busy" }]);
});

test("stream: teardown ends the stream by beacon or DELETE, releases the camera, keeps the mode", () => {
  const state = stateWith({ session: 2, stream: { id: "str_a", mode: "local" } });
  const beacon = stream(state.stream, { type: "TEARDOWN", end: "beacon" }, 0, ctx(state));
  assert.deepEqual(beacon.actions, [{ type: "BEACON_END", streamId: "str_a" }, { type: "STOP_CAMERA" }]);
  assert.equal(beacon.slice.id, null);
  assert.equal(beacon.slice.mode, "local");
  assert.deepEqual(types(stream(state.stream, { type: "TEARDOWN", end: "delete" }, 0, ctx(state)).actions), ["DELETE_STREAM", "STOP_CAMERA"]);
});

test("publish: the first attempt waits for the stream and the camera; failures back off, then fail word for word", () => {
  const waiting = stateWith({ phase: "connecting", stream: { id: "str_a" } });
  assert.deepEqual(publish(waiting.publish, { type: "SETTLE" }, 0, ctx(waiting)).actions, [], "camera not running yet");
  const ready = stateWith({ phase: "connecting", session: 1, stream: { id: "str_a", cameraReady: true }, publish: { windowStart: 0 } });
  const first = publish(ready.publish, { type: "SETTLE" }, 0, ctx(ready));
  assert.deepEqual(first.actions, [{ type: "WHIP_CONNECT", session: 1, streamId: "str_a", url: "/api/daydream/streams/str_a/whip", attempt: 0 }]);
  const failed = publish(first.slice, { type: "WHIP_RESULT", session: 1, ok: false, status: 503, message: "WHIP offer failed: 503" }, 1000, ctx(ready));
  assert.deepEqual(failed.actions, []);
  assert.equal(failed.slice.nextAt, 1500);
  assert.equal(failed.slice.retried, true);
  const rejected = publish(first.slice, { type: "WHIP_RESULT", session: 1, ok: false, status: 400, message: "WHIP offer failed: 400" }, 1000, ctx(ready));
  assert.deepEqual(rejected.actions, [{ type: "FAIL", message: "Could not connect to Dream: WHIP offer failed: 400" }]);
});

test("watch: a live poll for a gone stream fails the session; two failed polls are 'connection lost'", () => {
  const live = stateWith({ phase: "live", watch: { pollInFlight: true } });
  const gone = watch(live.watch, { type: "STATUS_RESULT", session: 0, ok: false, httpStatus: 404, body: null }, 0, ctx(live));
  assert.deepEqual(gone.actions, [{ type: "FAIL", message: MESSAGES.STREAM_ENDED }]);
  let slice = live.watch;
  for (const at of [1000, 2000]) slice = watch(slice, { type: "STATUS_RESULT", session: 0, ok: false, httpStatus: 0, body: null }, at, ctx(live)).slice;
  assert.equal(slice.pollFailures, 2);
  assert.equal(slice.nextPollAt, 3000, "1 s polling while it fails");
  assert.equal(connectionLost(stateWith({ phase: "live", watch: slice }), DEFAULT_OPTIONS), true);
  assert.equal(connectionLost(stateWith({ phase: "connecting", watch: slice }), DEFAULT_OPTIONS), false, "only once live");
});

test("output: never from the WHEP video back to the iframe unless the player gave up; local mode cannot fall back", () => {
  const daydream = stateWith({ phase: "live", stream: { mode: "daydream", playbackId: "pb" }, output: { countdownDone: true, revealed: "whep", whepUrl: "/w", playerStarted: true } });
  const again = output(daydream.output, { type: "PLAYING", session: 0 }, 0, ctx(daydream));
  assert.deepEqual(again.actions, [], "already showing the WHEP video");
  const fallback = output(daydream.output, { type: "PLAYER_FAILED", session: 0, message: "x" }, 0, ctx(daydream));
  assert.deepEqual(fallback.actions, [
    { type: "STOP_PLAYER" },
    { type: "SHOW", target: "notice", message: MESSAGES.PLAYER_FALLBACK },
    { type: "REVEAL_OUTPUT", kind: "iframe", playbackId: "pb" },
  ]);
  const local = stateWith({ phase: "live", stream: { mode: "local" } });
  assert.deepEqual(output(local.output, { type: "PLAYER_FAILED", session: 0, message: "no frames" }, 0, ctx(local)).actions, [{ type: "FAIL", message: "no frames" }]);
});

test("updates: nothing is sent while the gate is closed; the fifth counted failure asks for the notice", () => {
  const closed = stateWith({ phase: "connecting", stream: { id: "str_a" }, updates: { appliedPrompt: "a", prompt: "b" } });
  assert.equal(patchGateOpen(closed), false);
  assert.deepEqual(updates(closed.updates, { type: "SETTLE" }, 0, ctx(closed)).actions, []);
  const open = stateWith({ phase: "live", stream: { id: "str_a" }, output: { countdownDone: true }, publish: { connected: true }, updates: { appliedPrompt: "a", prompt: "b" } });
  assert.equal(patchGateOpen(open), true);
  const sent = updates(open.updates, { type: "SETTLE" }, 0, ctx(open));
  assert.deepEqual(types(sent.actions), ["SEND_PATCH", "SHOW"]);
  const fifth = updates({ ...sent.slice, failures: 4 }, { type: "PATCH_RESULT", session: 0, ok: false, status: 405 }, 100, ctx(open));
  assert.deepEqual(fifth.actions, [
    { type: "SHOW", target: "notice", message: MESSAGES.LIVE_UPDATES_UNAVAILABLE },
    { type: "SHOW", target: "update", message: null, clearAt: null },
  ]);
  assert.equal(fifth.slice.disabled, true);
});

test("the dispatcher drops a SHOW that changes nothing on the status and notice lines", () => {
  const lc = createLifecycle({ prompt: PROMPT });
  lc.handle({ type: "CLICK_DREAM" }, 0);
  lc.handle({ type: "CONFIG_OK", session: lc.state.session, configured: true, mode: "local" }, 0);
  lc.handle({ type: "CAMERA_OK", session: lc.state.session }, 0);
  lc.handle({ type: "CREATED", session: lc.state.session, stream: { id: "str_a" } }, 0);
  assert.equal(lc.state.status, MESSAGES.CONNECTING);
  assert.deepEqual(lc.handle({ type: "CAMERA_READY", session: lc.state.session }, 0).filter((a) => a.type === "SHOW"), [], "still connecting");
});

test("tickDelay: none while nothing is scheduled, whole milliseconds rounded up, never negative", () => {
  const lc = createLifecycle({ prompt: PROMPT });
  assert.equal(tickDelay(lc.state, 0), null);
  lc.handle({ type: "CLICK_DREAM" }, 0);
  lc.handle({ type: "CONFIG_OK", session: lc.state.session, configured: true, mode: "local" }, 0);
  lc.handle({ type: "CAMERA_OK", session: lc.state.session }, 0);
  assert.equal(tickDelay(lc.state, 0), null, "nothing to wait for while creating");
  lc.handle({ type: "CREATED", session: lc.state.session, stream: { id: "str_a" } }, 10);
  assert.equal(nextDeadline(lc.state), 1010);
  assert.equal(tickDelay(lc.state, 10), 1000);
  assert.equal(tickDelay(lc.state, 409.4), 601);
  assert.equal(tickDelay(lc.state, 5000), 0);
  lc.handle({ type: "STOP" }, 20);
  assert.equal(tickDelay(lc.state, 20), null, "stopped: no timer");
});

/**
 * Runs a scenario with a 100 ms ticker or with a shell that sleeps until nextDeadline.
 * `script`: events at times (a function of the state for session-bound ones); `responder()`
 * makes a fresh function giving the events an action's outcome feeds back at once. Returns "time action" lines.
 */
function simulate(driver, { options, script, responder, end }) {
  const respond = responder();
  const lc = createLifecycle({ prompt: PROMPT, options });
  /** @type {string[]} */
  const log = [];
  const feed = (event, t) => {
    const queue = [event];
    while (queue.length) {
      for (const a of lc.handle(queue.shift(), t)) {
        log.push(`${t} ${JSON.stringify(a)}`);
        queue.push(...respond(a, t, lc.state));
      }
    }
  };
  const pending = [...script];
  const runScript = (t) => {
    while (pending.length && pending[0].at <= t) {
      const { event } = pending.shift();
      feed(typeof event === "function" ? event(lc.state) : event, t);
    }
  };
  if (driver === "ticker") {
    for (let t = 0; t <= end; t += 100) {
      runScript(t);
      feed({ type: "TICK" }, t);
    }
  } else {
    for (let t = 0; t <= end; ) {
      runScript(t);
      const due = nextDeadline(lc.state);
      if (due !== null && due <= t) {
        feed({ type: "TICK" }, t);
        const after = nextDeadline(lc.state);
        assert.ok(after === null || after > t, `a TICK at ${t} moves the deadline on (no spinning)`);
      }
      const next = Math.min(pending.length ? pending[0].at : Infinity, nextDeadline(lc.state) ?? Infinity);
      if (next === Infinity) break;
      t = Math.max(next, t + 1);
    }
  }
  return { log, state: lc.state };
}

/** FRAME events every `every` ms in [from, to) (decoded output frames the shell reports). */
function frames(from, to, every = 500) {
  const out = [];
  for (let at = from; at < to; at += every) out.push({ at, event: (s) => ({ type: "FRAME", session: s.session }) });
  return out;
}

/** A script sorted by time (stable). */
const timeline = (...parts) => parts.flat().sort((a, b) => a.at - b.at);

/** A pushed status message (`event: status`) at a time. */
const pushed = (at, phase, data) => ({ at, event: (s) => ({ type: "STATUS_EVENT", session: s.session, phase, reason: null, status: { success: true, data } }) });

/**
 * Answers the start-up actions (config, camera, create) at once; the status event stream
 * answers like today's gateway (404: the page polls) unless `events` says otherwise.
 */
function startUp(mode, events = "missing") {
  return (a) => {
    switch (a.type) {
      case "OPEN_EVENTS":
        if (events === "missing") return [{ type: "EVENTS_ERROR", session: a.session, closed: true }];
        if (events === "warming") return [{ type: "STATUS_EVENT", session: a.session, phase: "warming", reason: "loading the pipeline", status: { success: true, data: { state: "LOADING" } } }];
        return [];
      case "CHECK_CONFIG":
        return [{ type: "CONFIG_OK", session: a.session, configured: true, mode }];
      case "CAMERA_PRECHECK":
        return [{ type: "CAMERA_OK", session: a.session }];
      case "CREATE_STREAM":
        return [{ type: "CREATED", session: a.session, stream: { id: "str_a", output_playback_id: "pb", params: { model_id: "stabilityai/sd-turbo" } } }];
      case "START_CAMERA":
        return [{ type: "CAMERA_READY", session: a.session }];
      default:
        return [];
    }
  };
}

const SCENARIOS = {
  "WHIP offer never answered: countdown seconds, iframe, warm-up grace, post-poll grace, 'did not become active'": {
    end: 70000,
    script: [{ at: 0, event: { type: "CLICK_DREAM" } }],
    responder: () => startUp("daydream"),
    check: (state) => assert.equal(state.status, MESSAGES.NOT_ACTIVE),
  },
  "WHIP retries, live, a prompt update with warm-up retries, 'Prompt updated' cleared, connection lost and back": {
    end: 90000,
    // The ticker sees 100 ms steps: a debounce on that grid.
    options: { patchDebounceMs: 200 },
    script: [
      { at: 0, event: { type: "CLICK_DREAM" } },
      { at: 20000, event: { type: "PROMPT_CHANGED", prompt: "female x" } },
    ],
    responder: () => {
      let offers = 0;
      let patches = 0;
      const up = startUp("local");
      return (a, t) => {
        if (a.type === "WHIP_CONNECT") return [++offers <= 4 ? { type: "WHIP_RESULT", session: a.session, ok: false, status: 503, message: "x" } : { type: "WHIP_RESULT", session: a.session, ok: true }];
        if (a.type === "POLL_STATUS") {
          const down = t >= 40000 && t < 50000;
          return [down ? { type: "STATUS_RESULT", session: a.session, ok: false, httpStatus: 0, body: null } : { type: "STATUS_RESULT", session: a.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "ONLINE" } } }];
        }
        if (a.type === "SEND_PATCH") return [{ type: "PATCH_RESULT", session: a.session, ok: ++patches > 3, status: patches > 3 ? 200 : 503 }];
        return up(a);
      };
    },
    check: (state, log) => {
      assert.equal(state.phase, "live");
      assert.equal(state.updates.appliedPrompt, "female x");
      assert.ok(log.some((l) => l.includes(MESSAGES.RECONNECTING)), "connection lost was shown");
      assert.ok(log.some((l) => l.includes('"message":null,"clearAt":null')), "'Prompt updated' was cleared");
    },
  },
  "a prompt changed during the countdown waits for the gate; counted PATCH failures, then live updates unavailable": {
    end: 40000,
    script: timeline(
      { at: 0, event: { type: "CLICK_DREAM" } },
      { at: 1000, event: { type: "PROMPT_CHANGED", prompt: "male x" } },
      { at: 5000, event: (s) => ({ type: "PLAYING", session: s.session }) },
      frames(5000, 40000),
    ),
    responder: () => {
      const up = startUp("local");
      return (a) => {
        if (a.type === "WHIP_CONNECT") return [{ type: "WHIP_RESULT", session: a.session, ok: true }];
        if (a.type === "POLL_STATUS") return [{ type: "STATUS_RESULT", session: a.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "LOADING" } } }];
        if (a.type === "SEND_PATCH") return [{ type: "PATCH_RESULT", session: a.session, ok: false, status: 405 }];
        return up(a);
      };
    },
    check: (state) => assert.equal(state.notice, MESSAGES.LIVE_UPDATES_UNAVAILABLE),
  },
  "status by events (no polling), 'Prompt applied' from the pushed hash, a stall healed by re-subscribing WHEP, an error storm falls back to polling": {
    end: 70000,
    options: { patchDebounceMs: 200 },
    script: timeline(
      { at: 0, event: { type: "CLICK_DREAM" } },
      pushed(3000, "live", { state: "ONLINE", inference_status: { fps: 30, last_params_hash: "h1", last_params: { prompt: PROMPT } } }),
      { at: 3000, event: (s) => ({ type: "PLAYING", session: s.session }) },
      frames(3000, 20000),
      { at: 16000, event: { type: "PROMPT_CHANGED", prompt: "female x" } },
      pushed(18000, "live", { state: "ONLINE", inference_status: { fps: 30, last_params_hash: "h2", last_params: { prompt: "female x" } } }),
      // Output stops after 19.5 s: stalled at 21.5 s, the first WHEP step until 28.5 s, frames back at 31 s.
      frames(31000, 70000),
      pushed(33000, "live", { state: "ONLINE", inference_status: { fps: 30, last_params_hash: "h2" } }),
      [40000, 43000, 46000].map((at) => ({ at, event: (s) => ({ type: "EVENTS_ERROR", session: s.session, closed: false }) })),
    ),
    responder: () => {
      const up = startUp("local", "warming");
      return (a) => {
        if (a.type === "WHIP_CONNECT") return [{ type: "WHIP_RESULT", session: a.session, ok: true }];
        if (a.type === "POLL_STATUS") return [{ type: "STATUS_RESULT", session: a.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "ONLINE" } } }];
        if (a.type === "SEND_PATCH") return [{ type: "PATCH_RESULT", session: a.session, ok: true, status: 200 }];
        return up(a);
      };
    },
    check: (state, log) => {
      assert.equal(state.phase, "live");
      assert.equal(state.status, MESSAGES.LIVE);
      const at = (type) => log.filter((l) => l.includes(`"type":"${type}"`)).map((l) => Number(l.split(" ")[0]));
      assert.deepEqual(at("OPEN_EVENTS").length, 1);
      assert.ok(at("POLL_STATUS").every((t) => t >= 46000), `no polling while the event stream is open (${at("POLL_STATUS")})`);
      assert.ok(at("POLL_STATUS").length > 0, "polling after the third error in a row");
      assert.deepEqual(at("SEND_PATCH"), [16200], "one PATCH, after the debounce");
      assert.ok(log.some((l) => l.startsWith("16200 ") && l.includes(MESSAGES.PROMPT_SENT)));
      assert.ok(log.some((l) => l.startsWith("18000 ") && l.includes(MESSAGES.PROMPT_APPLIED)));
      assert.ok(log.some((l) => l.startsWith("21500 ") && l.includes(MESSAGES.STALLED)));
      assert.deepEqual(at("START_PLAYER").slice(1), [21500, 28500], "one re-subscribe per step");
      assert.ok(log.some((l) => l.startsWith("31000 ") && l.includes(MESSAGES.LIVE)), "frames back: live again");
      assert.ok(log.some((l) => l.includes(MESSAGES.RECONNECTING)), "event stream errors while live read as a lost connection");
    },
  },
  "ICE 'disconnected' re-published by a new POST after the grace; a silent event stream falls back after its open timeout; a stall that never heals fails after its steps": {
    end: 80000,
    script: timeline(
      { at: 0, event: { type: "CLICK_DREAM" } },
      { at: 2000, event: (s) => ({ type: "PLAYING", session: s.session }) },
      frames(2000, 40000),
      { at: 20000, event: (s) => ({ type: "WHIP_STATE", session: s.session, state: "disconnected" }) },
    ),
    responder: () => {
      const up = startUp("local", "silent");
      return (a) => {
        if (a.type === "WHIP_CONNECT") return [{ type: "WHIP_RESULT", session: a.session, ok: true }, { type: "WHIP_STATE", session: a.session, state: "connected" }];
        if (a.type === "POLL_STATUS") return [{ type: "STATUS_RESULT", session: a.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "ONLINE" } } }];
        return up(a);
      };
    },
    check: (state, log) => {
      const at = (type) => log.filter((l) => l.includes(`"type":"${type}"`)).map((l) => Number(l.split(" ")[0]));
      assert.equal(at("POLL_STATUS")[0], at("OPEN_EVENTS")[0] + DEFAULT_OPTIONS.events.openTimeoutMs, "polling once the event stream stayed silent");
      assert.ok(log.some((l) => l.startsWith("20000 ") && l.includes(MESSAGES.RECONNECTING)), "says so at once");
      assert.ok(at("WHIP_DISCONNECT").includes(21000), "the old session ends after the 1 s grace");
      assert.ok(at("WHIP_CONNECT").some((t) => t > 21000 && t < 23000), "and a new POST follows");
      // The last frame at 39.5 s: stall at 41.5 s, steps whep, whep, whip, whip (7 s each), then the end.
      assert.deepEqual(at("START_PLAYER").slice(1), [41500, 48500, 55500, 62500]);
      assert.ok(at("WHIP_CONNECT").some((t) => t >= 55500), "a WHIP step re-publishes");
      assert.ok(log.some((l) => l.startsWith("69500 ") && l.includes(MESSAGES.STALL_FAILED)));
      assert.equal(state.phase, "error");
      assert.equal(state.status, MESSAGES.STALL_FAILED);
    },
  },
};

for (const [name, scenario] of Object.entries(SCENARIOS)) {
  test(`sleeping until nextDeadline = ticking every 100 ms: ${name}`, () => {
    const ticker = simulate("ticker", scenario);
    const sleeper = simulate("sleeper", scenario);
    scenario.check(ticker.state, ticker.log);
    assert.deepEqual(sleeper.log, ticker.log);
    assert.deepEqual(sleeper.state, ticker.state);
  });
}

test("readers: status bodies in one place", () => {
  const pick = (v) => ({ active: v.active, whepUrl: v.whepUrl });
  assert.deepEqual(pick(readStatus({ success: true, data: { state: "ONLINE", gateway_status: { whep_url: "https://x/whep" } } })), { active: true, whepUrl: "https://x/whep" });
  assert.deepEqual(pick(readStatus({ success: false, data: { state: "ONLINE", gateway_status: { whep_url: "https://x/whep" } } })), { active: false, whepUrl: "https://x/whep" });
  assert.deepEqual(pick(readStatus(null)), { active: false, whepUrl: null });
  assert.deepEqual(pick(readStatus([{ state: "ONLINE" }])), { active: false, whepUrl: null });
});

test("readers: error lines, the 409's active stream, the config", () => {
  assert.equal(errorMessage({ error: "Stream not found", message: "Stream str_1 has ended" }, 404), "Stream str_1 has ended");
  assert.equal(errorMessage({ error: "Upstream unreachable" }, 502), "Upstream unreachable");
  assert.equal(errorMessage(null, 503), "HTTP 503");
  assert.equal(errorMessage("oops", 500), "HTTP 500");
  assert.equal(activeStreamIdOf({ error: "x", activeStreamId: "str_old" }), "str_old");
  assert.equal(activeStreamIdOf({ activeStreamId: 5 }), undefined);
  assert.equal(activeStreamIdOf(null), undefined);
  assert.deepEqual(readConfig({ configured: true, mode: "local", playback: { iframeBase: "https://p/" } }), { configured: true, mode: "local", iframeBase: "https://p/" });
  assert.deepEqual(readConfig({ configured: 0, mode: "other" }), { configured: false, mode: "daydream", iframeBase: "https://lvpr.tv/" });
  assert.throws(() => readConfig(null));
});
