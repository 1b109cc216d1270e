// Lifecycle state machine: every timer, retry and failure rule, with an injected clock.
import { test } from "node:test";
import assert from "node:assert/strict";

import { createLifecycle, DEFAULT_OPTIONS, MESSAGES, nextDeadline, step, initialState } from "../static/lib/lifecycle.js";
import { isActiveStatus, isNotReadyBody, isPatchWarmupFailure, livePollVerdict, statusWhepUrl } from "../static/lib/readers.js";
import { DEFAULT_MODEL_ID, PIPELINE } from "../static/lib/params.js";

const PROMPT = "androgynous cartoon magical dj blue sparkle";
const STREAM = { id: "str_abc", output_playback_id: "pb_123", params: { model_id: "stabilityai/sd-turbo" } };

/**
 * A lifecycle with a manual clock, in front of today's gateway: the status event stream
 * cannot be opened (404), so the page polls; prompt changes go out without the debounce;
 * no freeze watchdog (these have their own tests in lifecycle-live.test.js).
 */
function harness(options) {
  const lc0 = createLifecycle({ prompt: PROMPT, options: { patchDebounceMs: 0, heal: { ...DEFAULT_OPTIONS.heal, stallMs: Infinity }, ...options } });
  const handle = (event, at) => {
    const actions = lc0.handle(event, at);
    const open = actions.find((a) => a.type === "OPEN_EVENTS");
    return open ? [...actions, ...lc0.handle({ type: "EVENTS_ERROR", session: open.session, closed: true }, at)] : actions;
  };
  const lc = { get state() { return lc0.state; }, options: lc0.options, handle };
  let t = 0;
  const h = {
    lc,
    get t() {
      return t;
    },
    get state() {
      return lc.state;
    },
    get session() {
      return lc.state.session;
    },
    /** Moves the clock to `at` without any event. */
    at(at) {
      assert.ok(at >= t, "time never goes back");
      t = at;
    },
    /** Sends one event at the current time (or at `at`). */
    send(event, at) {
      if (at !== undefined) {
        assert.ok(at >= t, "time never goes back");
        t = at;
      }
      return lc.handle(event, t);
    },
    /** Sends TICKs every `stepMs` for `ms`; returns all actions with their times. */
    advance(ms, stepMs = 100) {
      const out = [];
      const end = t + ms;
      while (t < end) {
        t = Math.min(end, t + stepMs);
        for (const a of lc.handle({ type: "TICK" }, t)) out.push({ ...a, at: t });
      }
      return out;
    },
    /** Sends TICKs until an action of `type` shows up (or `limitMs`). */
    until(type, limitMs = 120000, stepMs = 100) {
      const end = t + limitMs;
      while (t < end) {
        t += stepMs;
        const actions = lc.handle({ type: "TICK" }, t);
        const hit = actions.find((a) => a.type === type);
        if (hit) return { action: hit, at: t, actions };
      }
      return null;
    },
  };
  return h;
}

const types = (actions) => actions.map((a) => a.type);
const find = (actions, type) => actions.find((a) => a.type === type);

/** Drives a session up to the first WHIP_CONNECT. */
function start(h, { mode = "local", stream = STREAM } = {}) {
  const click = h.send({ type: "CLICK_DREAM" });
  const session = h.session;
  assert.deepEqual(types(click), ["SHOW", "CHECK_CONFIG", "CAMERA_PRECHECK"]);
  assert.equal(h.send({ type: "CONFIG_OK", session, configured: true, mode }).length, 0);
  const created = h.send({ type: "CAMERA_OK", session });
  assert.deepEqual(types(created).filter((x) => x !== "SHOW"), ["CREATE_STREAM", "START_CAMERA"]);
  const createdAt = h.t;
  const afterCreate = h.send({ type: "CREATED", session, stream });
  assert.deepEqual(find(afterCreate, "COUNTDOWN"), { type: "COUNTDOWN", seconds: 15 });
  const ready = h.send({ type: "CAMERA_READY", session });
  const whip = find(ready, "WHIP_CONNECT");
  assert.ok(whip, "WHIP starts once the stream exists and the camera runs");
  return { session, createdAt, whip, created, afterCreate };
}

/** Drives a local-mode session to live (WHIP answered, output playing). */
function goLive(h) {
  const s = start(h);
  const answered = h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: null });
  h.send({ type: "WHIP_STATE", session: s.session, state: "connected" });
  h.send({ type: "PLAYING", session: s.session });
  assert.equal(h.state.phase, "live");
  return { ...s, answered };
}

test("happy path (local mode): create, camera, WHIP, WHEP player, polling, live", () => {
  const h = harness();
  const s = start(h);
  const create = find(s.created, "CREATE_STREAM");
  assert.equal(create.payload.pipeline, PIPELINE);
  assert.equal(create.payload.params.prompt, PROMPT);
  assert.equal(create.payload.params.model_id, DEFAULT_MODEL_ID);
  assert.equal(s.whip.url, "/api/daydream/streams/str_abc/whip");
  assert.equal(s.whip.attempt, 0);

  h.at(300);
  const answered = h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: null });
  assert.deepEqual(find(answered, "START_PLAYER"), { type: "START_PLAYER", session: s.session, url: "/api/daydream/streams/str_abc/whep" });
  assert.deepEqual(find(answered, "POLL_STATUS"), { type: "POLL_STATUS", session: s.session, streamId: "str_abc", timeoutMs: 5000 });
  assert.equal(h.state.phase, "connecting");

  const playing = h.send({ type: "PLAYING", session: s.session }, 1800);
  assert.deepEqual(types(playing), ["COUNTDOWN", "REVEAL_OUTPUT", "SHOW"]);
  assert.deepEqual(find(playing, "COUNTDOWN"), { type: "COUNTDOWN", seconds: null });
  assert.deepEqual(find(playing, "REVEAL_OUTPUT"), { type: "REVEAL_OUTPUT", kind: "whep", playbackId: "pb_123" });
  assert.deepEqual(find(playing, "SHOW"), { type: "SHOW", target: "status", message: MESSAGES.LIVE });
  assert.equal(h.state.phase, "live");
});

test("countdown ends as soon as output plays: nobody waits 15 s on a fast backend", () => {
  const h = harness();
  const s = start(h);
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true });
  const ticks = h.advance(2000);
  assert.deepEqual(ticks.filter((a) => a.type === "COUNTDOWN").map((a) => a.seconds), [14, 13]);
  const playing = h.send({ type: "PLAYING", session: s.session });
  assert.equal(find(playing, "COUNTDOWN").seconds, null);
  assert.equal(h.state.output.countdownDone, true);
  // No countdown activity afterwards.
  assert.equal(h.advance(20000).filter((a) => a.type === "COUNTDOWN" || a.type === "REVEAL_OUTPUT").length, 0);
});

test("countdown runs the full 15 s on a slow backend, then reveals the iframe (no WHEP known)", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  const answered = h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: null });
  assert.equal(find(answered, "START_PLAYER"), undefined, "no WHEP URL on Daydream without Livepeer-Playback-URL");
  const ticks = h.advance(16000);
  const seconds = ticks.filter((a) => a.type === "COUNTDOWN").map((a) => a.seconds);
  assert.deepEqual(seconds, [14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, null]);
  const reveal = ticks.find((a) => a.type === "REVEAL_OUTPUT");
  assert.equal(reveal.at, s.createdAt + 15000);
  assert.deepEqual({ kind: reveal.kind, playbackId: reveal.playbackId }, { kind: "iframe", playbackId: "pb_123" });
  assert.equal(h.state.phase, "connecting", "not live until the status confirms");
});

test("Daydream mode: Livepeer-Playback-URL on the WHIP answer starts WHEP through the gateway", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  const answered = h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: "http://127.0.0.1:3000/api/daydream/streams/str_abc/whep" });
  assert.equal(find(answered, "START_PLAYER").url, "/api/daydream/streams/str_abc/whep");
});

test("Daydream mode: status gateway_status.whep_url starts WHEP through the gateway path", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true });
  const body = { success: true, data: { state: "LOADING", gateway_status: { whep_url: "https://upstream.example/whep/xyz" } } };
  const r = h.send({ type: "STATUS_RESULT", session: s.session, ok: true, httpStatus: 200, body });
  assert.equal(find(r, "START_PLAYER").url, "/api/daydream/streams/str_abc/whep");
  // Only once.
  assert.equal(find(h.send({ type: "STATUS_RESULT", session: s.session, ok: true, httpStatus: 200, body }), "START_PLAYER"), undefined);
});

test("WHIP startup retries: 404/409/429/5xx back off exponentially (500, 1000, 2000, 4000 ms)", () => {
  const h = harness();
  const s = start(h);
  const times = [h.t];
  const statuses = [503, 404, 409, 429];
  const shown = [];
  for (const status of statuses) {
    const failed = h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status, message: `WHIP offer failed: ${status}` });
    assert.equal(find(failed, "WHIP_CONNECT"), undefined, "never retried at once");
    assert.equal(h.state.phase, "connecting");
    const next = h.until("WHIP_CONNECT", 60000, 50);
    assert.ok(next, `retried after ${status}`);
    times.push(next.at);
    for (const a of [...failed, ...next.actions]) if (a.type === "SHOW" && a.target === "status") shown.push(a.message);
  }
  const gaps = times.slice(1).map((x, i) => x - times[i]);
  assert.deepEqual(gaps, [500, 1000, 2000, 4000]);
  // The status line is an aria-live region: it changes once, to "retrying", and stays there
  // while retries are scheduled and while they are in flight (no "Connecting…" flip-flop).
  assert.deepEqual(shown, [MESSAGES.WHIP_RETRY], "one status change across four retries");
  assert.equal(h.state.status, MESSAGES.WHIP_RETRY, "still 'retrying' while the 5th attempt is in flight");
  // Once a retry is answered, the line moves on (no way back to "Connecting…").
  const answered = h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: null });
  assert.deepEqual(answered.filter((a) => a.type === "SHOW").map((a) => a.message), [MESSAGES.WARMING_UP]);
});

test("the first WHIP attempt says 'Connecting…'; only a retry switches to 'retrying'", () => {
  const h = harness();
  const s = start(h);
  assert.equal(h.state.status, MESSAGES.CONNECTING);
  h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 503, message: "WHIP offer failed: 503" });
  assert.equal(h.state.status, MESSAGES.WHIP_RETRY);
  // A new session starts with "Connecting…" again.
  h.send({ type: "STOP" });
  start(h);
  assert.equal(h.state.status, MESSAGES.CONNECTING);
});

test("WHIP startup retries stop after the attempt budget", () => {
  const h = harness({ whipRetry: { baseMs: 100, factor: 2, maxMs: 200, maxAttempts: 3 } });
  const s = start(h);
  let attempts = 1;
  for (;;) {
    const failed = h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 503, message: "WHIP offer failed: 503" });
    if (h.state.phase === "error") {
      assert.equal(h.state.status, "Could not connect to Dream: WHIP offer failed: 503");
      assert.ok(types(failed).includes("DELETE_STREAM"));
      assert.ok(types(failed).includes("STOP_CAMERA"));
      break;
    }
    assert.ok(h.until("WHIP_CONNECT", 10000, 10));
    attempts++;
  }
  assert.equal(attempts, 3);
});

test("WHIP startup retries stop when the warm-up window is over", () => {
  const h = harness();
  const s = start(h);
  h.at(s.createdAt + 60001);
  h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 503, message: "WHIP offer failed: 503" });
  assert.equal(h.state.phase, "error");
});

test("non-retryable WHIP failure (400) fails at once and cleans up", () => {
  const h = harness();
  const s = start(h);
  const r = h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 400, message: "WHIP offer failed: 400" });
  assert.equal(h.state.phase, "error");
  assert.deepEqual(types(r), ["COUNTDOWN", "DELETE_STREAM", "STOP_CAMERA", "SHOW"]);
  assert.equal(find(r, "DELETE_STREAM").id, "str_abc");
  assert.equal(find(r, "SHOW").message, "Could not connect to Dream: WHIP offer failed: 400");
});

test("warm-up grace: status failures tolerated for 60 s, then a 3 s post-poll grace, then the error", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  const answered = h.send({ type: "WHIP_RESULT", session: s.session, ok: true });
  assert.ok(find(answered, "POLL_STATUS"), "first poll right after the WHIP answer");
  h.send({ type: "STATUS_RESULT", session: s.session, ok: false, httpStatus: 404, body: null });
  let polls = 1;
  // Answer every poll with a failure until t = createdAt + 60 s.
  while (h.t < s.createdAt + 60000 - 100) {
    for (const a of h.advance(100)) {
      if (a.type === "POLL_STATUS") {
        polls++;
        const fail = polls % 2 ? { ok: false, httpStatus: 503, body: { error: "x" } } : { ok: true, httpStatus: 200, body: { success: false } };
        h.send({ type: "STATUS_RESULT", session: s.session, ...fail });
      }
      assert.notEqual(a.type, "SHOW_ERROR");
    }
    assert.notEqual(h.state.phase, "error", `still warming up at ${h.t}`);
  }
  assert.ok(polls >= 55, `polled every second (${polls})`);
  // Crossing 60 s: one immediate poll, no error yet.
  const cross = h.advance(200);
  assert.ok(cross.some((a) => a.type === "POLL_STATUS"));
  assert.equal(h.state.phase, "connecting");
  assert.equal(h.state.watch.postGraceEndsAt, s.createdAt + 60000 + 3000);
  h.send({ type: "STATUS_RESULT", session: s.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "LOADING" } } });
  // Just before the post-poll grace ends: still fine.
  h.advance(s.createdAt + 63000 - h.t - 100);
  assert.equal(h.state.phase, "connecting");
  const end = h.advance(200);
  assert.equal(h.state.phase, "error");
  assert.equal(h.state.status, MESSAGES.NOT_ACTIVE);
  assert.ok(types(end).includes("DELETE_STREAM"));
});

test("post-poll grace: a stream that flips active late does not flash an error", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true });
  h.advance(60000 + 100);
  assert.ok(h.state.watch.postGraceEndsAt !== null);
  h.advance(1500);
  const r = h.send({ type: "STATUS_RESULT", session: s.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "ONLINE" } } });
  assert.equal(h.state.phase, "live");
  assert.equal(find(r, "SHOW").message, MESSAGES.LIVE);
  h.advance(10000);
  assert.equal(h.state.phase, "live");
});

test("polling slows down once live", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "STATUS_RESULT", session: s.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "ONLINE" } } });
  const t0 = h.t;
  const next = h.until("POLL_STATUS", 20000);
  assert.equal(next.at - t0, 5000);
});

/** Answers the next POLL_STATUS (TICKing until it is due) with `answer`; returns its time and the actions. */
function answerPoll(h, s, answer) {
  // A poll may already be in flight (one starts as soon as WHIP answers).
  const poll = h.state.watch.pollInFlight ? { at: h.t, actions: [] } : h.until("POLL_STATUS", 20000, 100);
  assert.ok(poll, "a status poll is due");
  const actions = h.send({ type: "STATUS_RESULT", session: s.session, ...answer });
  return { at: poll.at, actions, pollActions: poll.actions };
}

const POLL_OK = { ok: true, httpStatus: 200, body: { success: true, data: { state: "ONLINE" } } };
const POLL_DOWN = { ok: false, httpStatus: 0, body: null };
const POLL_502 = { ok: false, httpStatus: 502, body: { error: "Upstream unreachable", message: "x" } };

test("live, server gone quiet: 2 failed polls (network/5xx) say 'Connection lost', polls speed up, then back to live", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "STATUS_RESULT", session: s.session, ...POLL_OK });
  assert.equal(h.state.status, MESSAGES.LIVE);
  // First failure: still live (one blip is not a verdict), but the next poll comes in 1 s, not 5 s.
  const first = answerPoll(h, s, POLL_DOWN);
  assert.equal(h.state.status, MESSAGES.LIVE);
  assert.equal(first.actions.filter((a) => a.type === "SHOW").length, 0);
  // Second consecutive failure (a 502 from the gateway counts too): connection lost.
  const second = answerPoll(h, s, POLL_502);
  assert.equal(second.at - first.at, 1000, "fast polling after a failure");
  assert.deepEqual(find(second.actions, "SHOW"), { type: "SHOW", target: "status", message: MESSAGES.RECONNECTING });
  assert.equal(h.state.phase, "live", "not an error: WHIP/peer handling decides the real give-up");
  assert.equal(types(second.actions).includes("STOP_CAMERA"), false);
  // Keeps polling every second while it fails.
  const third = answerPoll(h, s, POLL_DOWN);
  assert.equal(third.at - second.at, 1000);
  assert.equal(h.state.status, MESSAGES.RECONNECTING);
  // A poll succeeds: live again, and polling slows back down.
  const back = answerPoll(h, s, POLL_OK);
  assert.equal(back.at - third.at, 1000);
  assert.deepEqual(find(back.actions, "SHOW"), { type: "SHOW", target: "status", message: MESSAGES.LIVE });
  const t0 = h.t;
  assert.equal(h.until("POLL_STATUS", 20000).at - t0, 5000);
});

test("live: failures must be consecutive; 429/400 answers neither count nor reset", () => {
  const h = harness();
  const s = goLive(h);
  answerPoll(h, s, POLL_DOWN);
  answerPoll(h, s, POLL_OK);
  answerPoll(h, s, POLL_DOWN);
  assert.equal(h.state.status, MESSAGES.LIVE, "fail, ok, fail is not 'lost'");
  answerPoll(h, s, { ok: false, httpStatus: 429, body: { error: "Too many requests" } });
  assert.equal(h.state.status, MESSAGES.LIVE);
  answerPoll(h, s, { ok: false, httpStatus: 503, body: null });
  assert.equal(h.state.status, MESSAGES.RECONNECTING, "the failure before the 429 still counts");
});

test("live, connection lost and the WHIP peer fails too: the WHIP budget decides the give-up", () => {
  const h = harness({ whipRetry: { baseMs: 500, factor: 2, maxMs: 8000, maxAttempts: 2 } });
  const s = goLive(h);
  answerPoll(h, s, POLL_DOWN);
  answerPoll(h, s, POLL_DOWN);
  assert.equal(h.state.status, MESSAGES.RECONNECTING);
  h.send({ type: "WHIP_STATE", session: s.session, state: "failed", error: "ICE connection failed" });
  assert.equal(h.state.status, MESSAGES.RECONNECTING);
  assert.ok(h.until("WHIP_CONNECT", 10000, 50));
  h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 0, message: "Failed to fetch" });
  assert.ok(h.until("WHIP_CONNECT", 10000, 50));
  h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 0, message: "Failed to fetch" });
  assert.equal(h.state.phase, "error");
  assert.equal(h.state.status, "Could not connect to Dream: Failed to fetch");
});

test("live, a poll says our stream is gone (404 ended / 403 not ours): stop cleanly with an error and Retry", () => {
  for (const answer of [
    { ok: false, httpStatus: 404, body: { error: "Stream not found", message: "Stream str_abc has ended" } },
    { ok: false, httpStatus: 403, body: { error: "Stream not owned by active session", message: "x" } },
  ]) {
    const h = harness();
    const s = goLive(h);
    const r = answerPoll(h, s, answer).actions;
    assert.equal(h.state.phase, "error", `after ${answer.httpStatus}`);
    assert.equal(h.state.status, MESSAGES.STREAM_ENDED);
    assert.equal(MESSAGES.STREAM_ENDED, "Dream stream ended on the server");
    for (const t of ["STOP_PLAYER", "HIDE_OUTPUT", "WHIP_DISCONNECT", "STOP_CAMERA"]) assert.ok(types(r).includes(t), `${t} after ${answer.httpStatus}`);
    assert.deepEqual(r.filter((a) => a.type === "SHOW" && a.target === "status"), [{ type: "SHOW", target: "status", message: MESSAGES.STREAM_ENDED }]);
    // Nothing else runs afterwards; Retry starts a new session.
    assert.equal(h.advance(10000).length, 0);
    assert.deepEqual(types(h.send({ type: "CLICK_DREAM" })), ["SHOW", "CHECK_CONFIG", "CAMERA_PRECHECK"]);
  }
});

test("a 404 status poll while warming up is not 'gone' (startup tolerates it); a 'not ready' 404 while live only counts as a failure", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true });
  h.send({ type: "STATUS_RESULT", session: s.session, ok: false, httpStatus: 404, body: { error: "Stream not found" } });
  assert.equal(h.state.phase, "connecting");
  const live = harness();
  const l = goLive(live);
  answerPoll(live, l, { ok: false, httpStatus: 404, body: { error: "STREAMS/NOT_READY" } });
  assert.equal(live.state.phase, "live");
  assert.equal(live.state.watch.pollFailures, 1);
});

test("livePollVerdict", () => {
  assert.equal(livePollVerdict(POLL_OK), "ok");
  assert.equal(livePollVerdict(POLL_DOWN), "failed");
  assert.equal(livePollVerdict({ ok: false, httpStatus: 504, body: null }), "failed");
  assert.equal(livePollVerdict({ ok: false, httpStatus: 500, body: null }), "failed");
  assert.equal(livePollVerdict({ ok: false, httpStatus: 404, body: null }), "gone");
  assert.equal(livePollVerdict({ ok: false, httpStatus: 403, body: null }), "gone");
  assert.equal(livePollVerdict({ ok: false, httpStatus: 404, body: { message: "stream not ready" } }), "failed");
  assert.equal(livePollVerdict({ ok: false, httpStatus: 429, body: null }), "neutral");
  assert.equal(livePollVerdict({ ok: false, httpStatus: 400, body: null }), "neutral");
});

test("active status rules: ONLINE / DEGRADED_*, inference output, bytes received", () => {
  assert.equal(isActiveStatus({ success: true, data: { state: "ONLINE" } }), true);
  assert.equal(isActiveStatus({ success: true, data: { state: "DEGRADED_INPUT" } }), true);
  assert.equal(isActiveStatus({ success: true, data: { state: "DEGRADED_INFERENCE" } }), true);
  assert.equal(isActiveStatus({ success: true, data: { state: "LOADING" } }), false);
  assert.equal(isActiveStatus({ success: true, data: { state: "OFFLINE" } }), false);
  assert.equal(isActiveStatus({ success: true, data: { state: "LOADING", inference_status: { fps: 12.5 } } }), true);
  assert.equal(isActiveStatus({ success: true, data: { state: "LOADING", inference_status: { fps: 0, last_output_time: 1735000000000 } } }), true);
  assert.equal(isActiveStatus({ success: true, data: { state: "LOADING", inference_status: { fps: 0, last_output_time: 0 } } }), false);
  const bytes = (n) => ({ success: true, data: { state: "OFFLINE", gateway_status: { ingest_metrics: { stats: { peer_conn_stats: { BytesReceived: n } } } } } });
  assert.equal(isActiveStatus(bytes(1024)), true);
  assert.equal(isActiveStatus(bytes(0)), false);
  assert.equal(isActiveStatus({ success: false, data: { state: "ONLINE" } }), false, "success:false is not active");
  assert.equal(isActiveStatus(null), false);
  assert.equal(isActiveStatus("ONLINE"), false);
  assert.equal(isActiveStatus({ state: "ONLINE" }), true, "bare data object");
  assert.equal(statusWhepUrl({ data: { gateway_status: { whep_url: "https://x/whep" } } }), "https://x/whep");
  assert.equal(statusWhepUrl({ data: {} }), null);
});

test("PATCH only once active: not during the countdown, not before the status confirms", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  const female = "female cartoon magical dj blue sparkle";
  assert.deepEqual(h.send({ type: "PROMPT_CHANGED", prompt: female }), []);
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true });
  // During the countdown, status not active: nothing.
  assert.equal(h.advance(10000).filter((a) => a.type === "SEND_PATCH").length, 0);
  // Status active but countdown still running: nothing yet.
  h.send({ type: "STATUS_RESULT", session: s.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "ONLINE" } } });
  const beforeEnd = h.advance(s.createdAt + 15000 - h.t - 100);
  assert.equal(beforeEnd.filter((a) => a.type === "SEND_PATCH").length, 0);
  // Countdown over and active: the PATCH goes out, minimal dynamic payload.
  const after = h.advance(200);
  const patch = find(after, "SEND_PATCH");
  assert.ok(patch);
  assert.equal(patch.streamId, "str_abc");
  assert.deepEqual(patch.body, { pipeline: "streamdiffusion", params: { model_id: "stabilityai/sd-turbo", prompt: female } });
  // One at a time.
  h.send({ type: "PROMPT_CHANGED", prompt: "male cartoon magical dj blue sparkle" });
  assert.equal(h.advance(2000).filter((a) => a.type === "SEND_PATCH").length, 0);
  // After success the newer prompt follows.
  const ok = h.send({ type: "PATCH_RESULT", session: s.session, ok: true, status: 200 });
  assert.equal(find(ok, "SEND_PATCH").body.params.prompt, "male cartoon magical dj blue sparkle");
  h.send({ type: "PATCH_RESULT", session: s.session, ok: true, status: 200 });
  assert.equal(h.state.updates.appliedPrompt, "male cartoon magical dj blue sparkle");
  assert.equal(h.advance(5000).filter((a) => a.type === "SEND_PATCH").length, 0, "nothing left to send");
});

test("PATCH gate opens on PLAYING (local) and repeats the stream's model_id", () => {
  const h = harness();
  const s = start(h, { stream: { ...STREAM, params: { model_id: "Lykon/dreamshaper-8" } } });
  h.send({ type: "PROMPT_CHANGED", prompt: "male x" });
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true });
  const playing = h.send({ type: "PLAYING", session: s.session });
  assert.deepEqual(find(playing, "SEND_PATCH").body, { pipeline: "streamdiffusion", params: { model_id: "Lykon/dreamshaper-8", prompt: "male x" } });
});

test("an unchanged prompt sends no PATCH", () => {
  const h = harness();
  const s = goLive(h);
  assert.equal(find(h.send({ type: "PROMPT_CHANGED", prompt: PROMPT }), "SEND_PATCH"), undefined);
  assert.equal(s.session, h.session);
});

test("warm-up PATCH failures (not-ready 404, 409/429/5xx within the grace window) are retried and not counted", () => {
  const h = harness();
  const s = goLive(h);
  let r = h.send({ type: "PROMPT_CHANGED", prompt: "female cartoon magical dj blue sparkle" });
  assert.ok(find(r, "SEND_PATCH"));
  const statuses = [404, 409, 429, 500, 502, 503, 504, 404, 503, 503];
  const sentAt = [h.t];
  for (const status of statuses) {
    h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status, message: "Daydream answered 404", notReady: status === 404 });
    assert.equal(h.state.updates.failures, 0);
    const next = h.until("SEND_PATCH", 20000, 50);
    assert.ok(next, `retried after ${status}`);
    sentAt.push(next.at);
  }
  assert.ok(h.t < s.createdAt + 60000, "all inside the grace window");
  assert.ok(h.t > s.createdAt + 10000, "the not-ready 404s went on past the short bare-404 window");
  assert.equal(h.state.notice, null);
  const gaps = sentAt.slice(1).map((x, i) => x - sentAt[i]);
  assert.deepEqual(gaps.slice(0, 5), [500, 1000, 2000, 4000, 4000]);
});

test("'not ready' detection in gateway error bodies: error, message, details.error, details.code (any case)", () => {
  const upstream = (details) => ({ error: "Stream not found", message: "Daydream answered 404", details });
  assert.equal(isNotReadyBody(upstream({ success: false, error: "Stream is not ready yet", code: "STREAMS/NOT_FOUND", status: 404 })), true, "details.error");
  assert.equal(isNotReadyBody(upstream({ success: false, error: "Not found", code: "STREAMS/NOT_READY", status: 404 })), true, "details.code");
  assert.equal(isNotReadyBody({ error: "stream NOT READY", message: "Daydream answered 404" }), true, "error");
  assert.equal(isNotReadyBody({ error: "Not found", message: "The stream is not-ready" }), true, "message");
  assert.equal(isNotReadyBody({ success: false, error: "x", code: "STREAMS/NOTREADY" }), true, "an upstream-style body");
  // Bare 404s: the gateway's own "ended" answer and a plain upstream 404.
  assert.equal(isNotReadyBody({ error: "Stream not found", message: "Stream str_1 has ended" }), false);
  assert.equal(isNotReadyBody(upstream({ success: false, error: "Stream not found", code: "STREAMS/NOT_FOUND", status: 404 })), false);
  assert.equal(isNotReadyBody({ error: "ready", details: { code: 12, error: null } }), false);
  for (const b of [null, undefined, "not ready", 404, ["not ready"]]) assert.equal(isNotReadyBody(b), false, JSON.stringify(b));
});

test("PATCH warm-up windows: not-ready for 60 s, a bare 404 for 10 s only, 409/429/5xx for 60 s", () => {
  const w = { warmupGraceMs: 60000, bare404GraceMs: 10000 };
  const bare = { status: 404, notReady: false };
  const notReady = { status: 404, notReady: true };
  assert.equal(isPatchWarmupFailure(bare, 0, w), true);
  assert.equal(isPatchWarmupFailure(bare, 9999, w), true);
  assert.equal(isPatchWarmupFailure(bare, 10000, w), false, "a bare 404 counts after the short window");
  assert.equal(isPatchWarmupFailure(notReady, 10000, w), true);
  assert.equal(isPatchWarmupFailure(notReady, 59999, w), true);
  assert.equal(isPatchWarmupFailure(notReady, 60000, w), false, "nothing is warm-up after the full window");
  assert.equal(isPatchWarmupFailure({ status: 503, notReady: false }, 30000, w), true);
  assert.equal(isPatchWarmupFailure({ status: 409, notReady: false }, 59999, w), true);
  assert.equal(isPatchWarmupFailure({ status: 429, notReady: false }, 60000, w), false);
  assert.equal(isPatchWarmupFailure({ status: 400, notReady: true }, 1000, w), true, "a 'not ready' body whatever the status");
  assert.equal(isPatchWarmupFailure({ status: 405, notReady: false }, 1000, w), false);
  assert.equal(isPatchWarmupFailure({ status: 400, notReady: false }, 1000, w), false);
  assert.equal(isPatchWarmupFailure({ status: 0, notReady: false }, 1000, w), false, "network errors count");
});

test("lifecycle: a bare 404 PATCH answer is warm-up up to 10 s after creation, then counts; a not-ready 404 still does not", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "PROMPT_CHANGED", prompt: "female cartoon magical dj blue sparkle" });
  // Inside 10 s of creation: a bare 404 is warm-up.
  assert.ok(h.t - s.createdAt < 10000);
  h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 404, message: "Daydream answered 404", notReady: false });
  assert.deepEqual({ failures: h.state.updates.failures, retries: h.state.updates.retries }, { failures: 0, retries: 1 });
  // 10 s after creation (and later): a bare 404 counts ...
  h.at(s.createdAt + 10000);
  assert.ok(h.until("SEND_PATCH", 20000, 50));
  h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 404, message: "Daydream answered 404", notReady: false });
  assert.equal(h.state.updates.failures, 1);
  // ... while a 404 saying "not ready" is still warm-up (not counted, the counter untouched).
  assert.ok(h.until("SEND_PATCH", 20000, 50));
  h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 404, message: "Daydream answered 404", notReady: true });
  assert.equal(h.state.updates.failures, 1);
  // Past 60 s nothing is warm-up: a not-ready 404 counts too.
  h.at(s.createdAt + 60000);
  assert.ok(h.until("SEND_PATCH", 20000, 50));
  h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 404, message: "Daydream answered 404", notReady: true });
  assert.equal(h.state.updates.failures, 2);
});

test("the bare-404 window is an option", () => {
  const h = harness({ patch: { bare404GraceMs: 2000 } });
  const s = goLive(h);
  h.at(s.createdAt + 2000);
  h.send({ type: "PROMPT_CHANGED", prompt: "b" });
  h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 404, notReady: false });
  assert.equal(h.state.updates.failures, 1);
});

test("5 counted PATCH failures: the spec message word for word, then no more PATCHes until restart", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "PROMPT_CHANGED", prompt: "female cartoon magical dj blue sparkle" });
  let sent = 1;
  /** @type {any[]} */
  let last = [];
  for (let i = 1; i <= 5; i++) {
    last = h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 405, message: "Method Not Allowed" });
    assert.equal(h.state.updates.failures, i);
    if (i < 5) {
      assert.equal(h.state.notice, null);
      assert.ok(h.until("SEND_PATCH", 20000, 50));
      sent++;
    }
  }
  assert.equal(sent, 5);
  assert.deepEqual(find(last, "SHOW"), { type: "SHOW", target: "notice", message: "Live updates unavailable — changes will apply on restart" });
  assert.equal(h.state.notice, "Live updates unavailable — changes will apply on restart");
  assert.equal(h.state.updates.disabled, true);
  h.send({ type: "PROMPT_CHANGED", prompt: "male cartoon magical dj blue sparkle" });
  assert.equal(h.advance(60000).filter((a) => a.type === "SEND_PATCH").length, 0);
  assert.equal(h.state.phase, "live", "the stream itself keeps running");

  // Stop clears the notice on the page (it was about the stream that ended), not only in the state.
  const stopped = h.send({ type: "STOP" });
  assert.deepEqual(
    stopped.filter((a) => a.type === "SHOW" && a.target === "notice"),
    [{ type: "SHOW", target: "notice", message: null }],
  );
  assert.equal(h.state.notice, null);
  // Restart: the new stream is created with the wanted prompt, updates work again.
  const r = h.send({ type: "CLICK_DREAM" });
  assert.ok(find(r, "SHOW"));
  assert.equal(h.state.notice, null);
  h.send({ type: "CONFIG_OK", session: h.session, configured: true, mode: "local" });
  const created = h.send({ type: "CAMERA_OK", session: h.session });
  assert.equal(find(created, "CREATE_STREAM").payload.params.prompt, "male cartoon magical dj blue sparkle");
  assert.equal(h.state.updates.disabled, false);
});

/** The "update" line's SHOW actions (prompt update feedback), without their times. */
const updates = (actions) => actions.filter((a) => a.type === "SHOW" && a.target === "update").map(({ message, clearAt }) => ({ message, clearAt }));

test("live prompt update feedback: 'Updating prompt…' while the PATCH is in flight, 'Prompt updated' for 3 s, cleared by TICK", () => {
  const h = harness();
  const s = goLive(h);
  h.at(20000);
  const sent = h.send({ type: "PROMPT_CHANGED", prompt: "female cartoon magical dj blue sparkle" });
  assert.ok(find(sent, "SEND_PATCH"));
  assert.deepEqual(updates(sent), [{ message: MESSAGES.UPDATING_PROMPT, clearAt: null }]);
  assert.equal(MESSAGES.UPDATING_PROMPT, "Updating prompt…");
  // It does not touch the status line or the notice.
  assert.equal(h.state.status, MESSAGES.LIVE);
  assert.equal(h.state.notice, null);
  h.at(20400);
  const ok = h.send({ type: "PATCH_RESULT", session: s.session, ok: true, status: 200 });
  assert.deepEqual(updates(ok), [{ message: "Prompt updated", clearAt: 23400 }]);
  assert.equal(nextDeadline(h.state) <= 23400, true, "the clear time is a deadline");
  // Still there just before the 3 s are over, gone at 3 s (by TICK).
  const before = h.advance(23400 - 100 - h.t);
  assert.deepEqual(updates(before), []);
  assert.equal(h.state.updates.line, MESSAGES.PROMPT_UPDATED);
  const cleared = h.advance(100);
  assert.deepEqual(updates(cleared), [{ message: null, clearAt: null }]);
  assert.equal(cleared.find((a) => a.type === "SHOW").at, 23400);
  assert.equal(h.state.updates.line, null);
  assert.deepEqual(updates(h.advance(10000)), []);
});

test("prompt update feedback stays 'Updating prompt…' through warm-up retries and a newer pending change", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "PROMPT_CHANGED", prompt: "female x" });
  const retried = [];
  h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 503, message: "x" });
  const next = h.until("SEND_PATCH", 20000, 50);
  retried.push(...updates(next.actions));
  assert.deepEqual(retried, [], "no flicker between retries");
  assert.equal(h.state.updates.line, MESSAGES.UPDATING_PROMPT);
  // A newer change arrives while "female x" is in flight: its success is not "updated" yet.
  h.send({ type: "PROMPT_CHANGED", prompt: "male x" });
  const first = h.send({ type: "PATCH_RESULT", session: s.session, ok: true, status: 200 });
  assert.equal(find(first, "SEND_PATCH").body.params.prompt, "male x");
  assert.deepEqual(updates(first), [], "still updating (the newer prompt is on its way)");
  assert.equal(h.state.updates.line, MESSAGES.UPDATING_PROMPT);
  const second = h.send({ type: "PATCH_RESULT", session: s.session, ok: true, status: 200 });
  assert.deepEqual(updates(second).map((u) => u.message), [MESSAGES.PROMPT_UPDATED]);
});

test("prompt changed back to the running prompt while a retry waits: the 'Updating prompt…' line goes away", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "PROMPT_CHANGED", prompt: "female x" });
  h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 503, message: "x" });
  const back = h.send({ type: "PROMPT_CHANGED", prompt: PROMPT });
  assert.deepEqual(updates(back), [{ message: null, clearAt: null }]);
  assert.equal(h.advance(10000).filter((a) => a.type === "SEND_PATCH").length, 0);
});

test("prompt update feedback never overrides 'Live updates unavailable…', which stays word for word until Stop", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "PROMPT_CHANGED", prompt: "female x" });
  /** @type {any[]} */
  let last = [];
  for (let i = 1; i <= 5; i++) {
    last = h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 405, message: "Method Not Allowed" });
    if (i < 5) assert.ok(h.until("SEND_PATCH", 20000, 50));
  }
  assert.equal(h.state.notice, "Live updates unavailable — changes will apply on restart");
  assert.deepEqual(updates(last), [{ message: null, clearAt: null }], "the 'Updating prompt…' line gives way");
  // Later changes: no PATCH, no feedback line, the notice untouched.
  const later = [...h.send({ type: "PROMPT_CHANGED", prompt: "male x" }), ...h.advance(30000)];
  assert.deepEqual(later.filter((a) => a.type === "SHOW"), []);
  assert.equal(h.state.notice, "Live updates unavailable — changes will apply on restart");
  assert.equal(h.state.updates.line, null);
});

test("Stop and errors clear the prompt update feedback", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "PROMPT_CHANGED", prompt: "female x" });
  const stopped = h.send({ type: "STOP" });
  assert.deepEqual(updates(stopped), [{ message: null, clearAt: null }]);
  assert.equal(h.state.updates.line, null);
  // A late answer for the stopped session shows nothing.
  assert.deepEqual(h.send({ type: "PATCH_RESULT", session: s.session, ok: true, status: 200 }), []);
  const h2 = harness();
  const s2 = goLive(h2);
  h2.send({ type: "PROMPT_CHANGED", prompt: "female x" });
  h2.send({ type: "PATCH_RESULT", session: s2.session, ok: true, status: 200 });
  const failed = h2.send({ type: "PLAYER_FAILED", session: s2.session, message: "Output did not start" });
  assert.equal(h2.state.phase, "error");
  assert.deepEqual(updates(failed), [{ message: null, clearAt: null }]);
});

test("counted failures are consecutive: a success resets the counter", () => {
  const h = harness();
  const s = goLive(h);
  h.send({ type: "PROMPT_CHANGED", prompt: "a" });
  for (let i = 0; i < 4; i++) {
    h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 400, message: "bad" });
    assert.ok(h.until("SEND_PATCH", 20000, 50));
  }
  h.send({ type: "PATCH_RESULT", session: s.session, ok: true, status: 200 });
  assert.equal(h.state.updates.failures, 0);
  h.send({ type: "PROMPT_CHANGED", prompt: "b" });
  h.send({ type: "PATCH_RESULT", session: s.session, ok: false, status: 400, message: "bad" });
  assert.equal(h.state.updates.disabled, false);
});

test("Stop: WHIP DELETE, stream DELETE, camera released, state idle", () => {
  const h = harness();
  const s = goLive(h);
  const r = h.send({ type: "STOP" });
  assert.deepEqual(types(r), ["STOP_PLAYER", "HIDE_OUTPUT", "WHIP_DISCONNECT", "DELETE_STREAM", "STOP_CAMERA", "SHOW"]);
  assert.equal(find(r, "DELETE_STREAM").id, "str_abc");
  assert.equal(find(r, "SHOW").message, MESSAGES.STOPPED);
  assert.equal(h.state.phase, "idle");
  assert.equal(h.state.stream.id, null);
  // Nothing ticks any more; late results of the stopped session are ignored.
  assert.deepEqual(h.advance(70000), []);
  assert.deepEqual(h.send({ type: "STATUS_RESULT", session: s.session, ok: true, httpStatus: 200, body: { data: { state: "ONLINE" } } }), []);
  assert.deepEqual(h.send({ type: "PLAYING", session: s.session }), []);
});

test("Stop while connecting (countdown running) also stops the countdown and the camera", () => {
  const h = harness();
  start(h);
  const r = h.send({ type: "STOP" });
  assert.deepEqual(types(r), ["COUNTDOWN", "WHIP_DISCONNECT", "DELETE_STREAM", "STOP_CAMERA", "SHOW"]);
});

test("Stop before the stream exists: a late CREATED is deleted at once", () => {
  const h = harness();
  h.send({ type: "CLICK_DREAM" });
  const session = h.session;
  h.send({ type: "CONFIG_OK", session, configured: true, mode: "local" });
  h.send({ type: "CAMERA_OK", session });
  const stop = h.send({ type: "STOP" });
  assert.deepEqual(types(stop), ["STOP_CAMERA", "SHOW"]);
  const late = h.send({ type: "CREATED", session, stream: STREAM });
  assert.deepEqual(late, [{ type: "DELETE_STREAM", session, id: "str_abc" }]);
  assert.equal(h.state.phase, "idle");
});

test("a new session ignores the previous session's results", () => {
  const h = harness();
  const first = start(h);
  h.send({ type: "STOP" });
  h.send({ type: "CLICK_DREAM" });
  assert.equal(h.session, first.session + 1);
  assert.deepEqual(h.send({ type: "WHIP_RESULT", session: first.session, ok: true }), []);
  assert.deepEqual(h.send({ type: "CONFIG_OK", session: first.session, configured: true, mode: "local" }), []);
  assert.equal(h.state.stream.configOk, false);
});

test("tab close (pagehide): sendBeacon to end the stream instead of DELETE", () => {
  const h = harness();
  goLive(h);
  const r = h.send({ type: "PAGEHIDE" });
  assert.deepEqual(find(r, "BEACON_END"), { type: "BEACON_END", streamId: "str_abc" });
  assert.equal(find(r, "DELETE_STREAM"), undefined);
  assert.ok(types(r).includes("STOP_CAMERA"));
  assert.ok(types(r).includes("WHIP_DISCONNECT"));
  assert.equal(h.state.phase, "idle");
  assert.deepEqual(h.send({ type: "PAGEHIDE" }), [], "idle: nothing to end");
});

test("409 on create: delete the session's active stream, retry once; a second 409 fails", () => {
  const h = harness();
  h.send({ type: "CLICK_DREAM" });
  const session = h.session;
  h.send({ type: "CONFIG_OK", session, configured: true, mode: "local" });
  h.send({ type: "CAMERA_OK", session });
  const r = h.send({ type: "CREATE_FAILED", session, status: 409, message: "Session already has an active stream", activeStreamId: "str_old" });
  assert.deepEqual(r, [{ type: "DELETE_STREAM", session, id: "str_old" }]);
  assert.equal(h.state.phase, "creating");
  const again = h.send({ type: "DELETED", session, id: "str_old" });
  assert.equal(again.length, 1);
  assert.equal(again[0].type, "CREATE_STREAM");
  h.send({ type: "CREATE_FAILED", session, status: 409, message: "Session already has an active stream", activeStreamId: "str_old2" });
  assert.equal(h.state.phase, "error");
  assert.equal(h.state.status, "Could not create the Dream stream: Session already has an active stream");
});

test("create failure shows the gateway's message and releases the camera", () => {
  const h = harness();
  h.send({ type: "CLICK_DREAM" });
  const session = h.session;
  h.send({ type: "CONFIG_OK", session, configured: true, mode: "daydream" });
  h.send({ type: "CAMERA_OK", session });
  const r = h.send({ type: "CREATE_FAILED", session, status: 502, message: "Daydream API unreachable" });
  assert.deepEqual(types(r), ["STOP_CAMERA", "SHOW"]);
  assert.equal(h.state.phase, "error");
});

test("camera failures: clear message, camera released, stream deleted if it exists", () => {
  const h = harness();
  h.send({ type: "CLICK_DREAM" });
  const r1 = h.send({ type: "CAMERA_FAILED", session: h.session, message: "Camera permission denied." });
  assert.equal(h.state.phase, "error");
  assert.equal(find(r1, "SHOW").message, "Camera permission denied.");
  assert.equal(find(r1, "CREATE_STREAM"), undefined, "no stream is created without a camera");

  const h2 = harness();
  const s = start(h2);
  const r2 = h2.send({ type: "CAMERA_FAILED", session: s.session, message: "Camera is in use" });
  assert.ok(types(r2).includes("DELETE_STREAM"));
  assert.ok(types(r2).includes("STOP_CAMERA"));
});

test("config: not configured or unreachable -> error; Retry starts over", () => {
  const h = harness();
  h.send({ type: "CLICK_DREAM" });
  h.send({ type: "CONFIG_OK", session: h.session, configured: false, mode: "daydream" });
  assert.equal(h.state.phase, "error");
  assert.equal(h.state.status, MESSAGES.NOT_CONFIGURED);
  const retry = h.send({ type: "CLICK_DREAM" });
  assert.deepEqual(types(retry), ["SHOW", "CHECK_CONFIG", "CAMERA_PRECHECK"]);
  h.send({ type: "CONFIG_FAILED", session: h.session, message: "Cannot reach the Dream service" });
  assert.equal(h.state.status, "Cannot reach the Dream service");
});

test("peer failure after going live: the status says reconnecting, then live again once WHIP is back", () => {
  const h = harness();
  const s = goLive(h);
  assert.equal(h.state.status, MESSAGES.LIVE);
  h.at(100000);
  const failed = h.send({ type: "WHIP_STATE", session: s.session, state: "failed", error: "ICE connection failed" });
  assert.deepEqual(find(failed, "SHOW"), { type: "SHOW", target: "status", message: MESSAGES.RECONNECTING });
  assert.ok(h.until("WHIP_CONNECT", 10000, 50));
  assert.equal(h.state.status, MESSAGES.RECONNECTING, "still reconnecting while the new offer is in flight");
  const back = h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: null });
  assert.deepEqual(find(back, "SHOW"), { type: "SHOW", target: "status", message: MESSAGES.LIVE });
  assert.equal(h.state.phase, "live");
});

test("peer failure after going live: WHIP reconnects with backoff, then gives up after the budget", () => {
  const h = harness({ whipRetry: { baseMs: 500, factor: 2, maxMs: 8000, maxAttempts: 3 } });
  const s = goLive(h);
  h.at(100000);
  const r = h.send({ type: "WHIP_STATE", session: s.session, state: "failed", error: "ICE connection failed" });
  assert.ok(types(r).includes("WHIP_DISCONNECT"));
  assert.equal(h.state.phase, "live");
  assert.equal(h.state.status, MESSAGES.RECONNECTING, "not \"live\" while the camera is not being published");
  const next = h.until("WHIP_CONNECT", 10000, 50);
  assert.equal(next.at - 100000, 500);
  // Three reconnect attempts in all (maxAttempts), 500 / 1000 ms apart.
  h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 503, message: "WHIP offer failed: 503" });
  const second = h.until("WHIP_CONNECT", 10000, 50);
  assert.equal(second.at - next.at, 500);
  h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 503, message: "WHIP offer failed: 503" });
  const third = h.until("WHIP_CONNECT", 10000, 50);
  assert.equal(third.at - second.at, 1000);
  assert.equal(h.state.status, MESSAGES.RECONNECTING);
  h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 503, message: "WHIP offer failed: 503" });
  assert.equal(h.state.phase, "error");
  assert.equal(h.state.status, "Could not connect to Dream: WHIP offer failed: 503");
});

test("nextDeadline reports the earliest pending timer", () => {
  const h = harness();
  assert.equal(nextDeadline(h.state), null);
  const s = start(h);
  // The countdown's next second (15 -> 14) is its first deadline; its end is the last.
  assert.equal(nextDeadline(h.state), s.createdAt + 1000);
  h.send({ type: "WHIP_RESULT", session: s.session, ok: false, status: 503, message: "x" }, 1000);
  assert.deepEqual(types(h.send({ type: "TICK" })), ["COUNTDOWN"]);
  assert.equal(nextDeadline(h.state), 1500);
  h.advance(13000);
  assert.equal(nextDeadline(h.state), s.createdAt + 15000);
});

test("step is pure: the input state is never mutated", () => {
  const s0 = initialState(PROMPT);
  const frozen = JSON.stringify(s0);
  const r = step(s0, { type: "CLICK_DREAM" }, 0);
  assert.equal(JSON.stringify(s0), frozen);
  assert.notEqual(r.state, s0);
  assert.equal(r.state.phase, "preparing");
});

test("WHEP player gave up, local mode: the session fails with the player's message; Retry starts afresh", () => {
  const h = harness();
  const s = start(h);
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true });
  assert.equal(h.state.output.playerStarted, true);
  const message = "Dream output did not become available within 60 s";
  const r = h.send({ type: "PLAYER_FAILED", session: s.session, message }, 60500);
  assert.deepEqual(types(r), ["STOP_PLAYER", "COUNTDOWN", "WHIP_DISCONNECT", "DELETE_STREAM", "STOP_CAMERA", "SHOW"]);
  assert.deepEqual(find(r, "SHOW"), { type: "SHOW", target: "status", message });
  assert.equal(h.state.phase, "error");
  // Stale reports of the old session change nothing; Retry (CLICK_DREAM) starts a new session.
  assert.deepEqual(h.send({ type: "PLAYER_FAILED", session: s.session, message: "x" }), []);
  const retry = h.send({ type: "CLICK_DREAM" });
  assert.ok(find(retry, "CHECK_CONFIG"));
  assert.equal(h.state.phase, "preparing");
  assert.equal(h.state.output.playerFailed, false);
});

test("WHEP player gave up, Daydream mode: Daydream's player (iframe) takes over, the stream keeps running", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: "/api/daydream/streams/str_abc/whep" });
  h.send({ type: "PLAYING", session: s.session }, 2000);
  assert.equal(h.state.output.revealed, "whep");
  const r = h.send({ type: "PLAYER_FAILED", session: s.session, message: "Dream output connection failed: peer connection failed (gave up after 3 restarts)" }, 30000);
  assert.deepEqual(find(r, "REVEAL_OUTPUT"), { type: "REVEAL_OUTPUT", kind: "iframe", playbackId: "pb_123" });
  assert.deepEqual(find(r, "SHOW"), { type: "SHOW", target: "notice", message: MESSAGES.PLAYER_FALLBACK });
  assert.ok(find(r, "STOP_PLAYER"));
  assert.equal(find(r, "DELETE_STREAM"), undefined, "the stream is not torn down");
  assert.equal(h.state.phase, "live");
  // Later status results do not bring the WHEP player back.
  h.send({ type: "STATUS_RESULT", session: s.session, ok: true, httpStatus: 200, body: { success: true, data: { state: "ONLINE", gateway_status: { whep_url: "https://x/whep" } } } });
  assert.equal(h.advance(10000).filter((a) => a.type === "START_PLAYER" || a.type === "REVEAL_OUTPUT").length, 0);
  // Stop tears down as usual.
  assert.ok(find(h.send({ type: "STOP" }), "DELETE_STREAM"));
});

test("WHEP player gave up during the countdown (Daydream mode): the iframe shows when the countdown ends", () => {
  const h = harness();
  const s = start(h, { mode: "daydream" });
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: "/api/daydream/streams/str_abc/whep" });
  const r = h.send({ type: "PLAYER_FAILED", session: s.session, message: "WHEP playback failed: 400" }, 1000);
  assert.equal(find(r, "REVEAL_OUTPUT"), undefined, "not during the countdown");
  const reveal = h.until("REVEAL_OUTPUT", 20000);
  assert.ok(reveal);
  assert.equal(reveal.action.kind, "iframe");
  assert.equal(reveal.at, s.createdAt + 15000);
});

test("WHEP player gave up, Daydream mode without a playback id: nothing can show the output -> error", () => {
  const h = harness();
  const s = start(h, { mode: "daydream", stream: { id: "str_abc", params: { model_id: "stabilityai/sd-turbo" } } });
  h.send({ type: "WHIP_RESULT", session: s.session, ok: true, playbackUrl: "/api/daydream/streams/str_abc/whep" });
  h.send({ type: "PLAYER_FAILED", session: s.session, message: "WHEP playback failed: 400" }, 1000);
  assert.equal(h.state.phase, "error");
  assert.equal(h.state.status, "WHEP playback failed: 400");
});
