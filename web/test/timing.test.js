// Pure timing rules of the WHIP client and the WHEP player.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  DELETE_TIMEOUT_MS,
  STREAM_DELETE_WAIT_MS,
  GATHERING_BUDGET_MS,
  ICE_GATHERING_TIMEOUT_MS,
  CONNECTION_TIMEOUT_MS,
  backoffDelay,
  connectTimedOut,
  gatherDeadline,
  gatherStep,
  isWarmupStatus,
  startGathering,
  startWait,
  waitStep,
} from "../static/lib/timing.js";
import {
  WHEP_MAX_RESTARTS,
  WHEP_MESSAGES,
  WHEP_PLAY_TIMEOUT_MS,
  WHEP_REQUEST_TIMEOUT_MS,
  WHEP_RETRY_BUDGET_MS,
  initialWhepState,
  whepDeadline,
  whepRetryDelay,
  whepShouldRetry,
  whepStep,
} from "../static/lib/whep-machine.js";

test("documented defaults: 1 s gathering budget, 20 s hard cap, 45 s connection timeout", () => {
  assert.equal(GATHERING_BUDGET_MS, 1000);
  assert.equal(ICE_GATHERING_TIMEOUT_MS, 20000);
  assert.equal(CONNECTION_TIMEOUT_MS, 45000);
});

test("gathering: the offer goes out as soon as gathering completes", () => {
  let gate = startGathering(1000);
  ({ gate } = gatherStep(gate, { type: "CANDIDATE" }, 1005));
  const r = gatherStep(gate, { type: "COMPLETE" }, 1010);
  assert.equal(r.send, "complete");
  // Released once only.
  assert.equal(gatherStep(r.gate, { type: "TICK" }, 5000).send, null);
  assert.equal(gatherDeadline(r.gate), null);
});

test("gathering: with a candidate, the budget (1 s) releases the offer; never 20 s on a closed network", () => {
  let gate = startGathering(0);
  assert.equal(gatherDeadline(gate), 20000, "no candidate yet: only the hard cap");
  let r = gatherStep(gate, { type: "CANDIDATE" }, 30);
  assert.equal(r.send, null);
  gate = r.gate;
  assert.equal(gatherDeadline(gate), 1000);
  assert.equal(gatherStep(gate, { type: "TICK" }, 999).send, null);
  assert.equal(gatherStep(gate, { type: "TICK" }, 1000).send, "budget");
});

test("gathering: a candidate arriving after the budget releases at once", () => {
  const gate = startGathering(0);
  assert.equal(gatherStep(gate, { type: "TICK" }, 5000).send, null);
  assert.equal(gatherStep(gate, { type: "CANDIDATE" }, 5000).send, "budget");
});

test("gathering: no candidate at all -> the 20 s hard cap", () => {
  const gate = startGathering(0);
  assert.equal(gatherStep(gate, { type: "TICK" }, 19999).send, null);
  assert.equal(gatherStep(gate, { type: "TICK" }, 20000).send, "cap");
});

test("gathering: custom budget and cap", () => {
  let { gate } = gatherStep(startGathering(0, { budgetMs: 250, capMs: 3000 }), { type: "CANDIDATE" }, 10);
  assert.equal(gatherDeadline(gate), 250);
  assert.equal(gatherStep(gate, { type: "TICK" }, 250).send, "budget");
  assert.equal(gatherStep(startGathering(0, { budgetMs: 250, capMs: 3000 }), { type: "TICK" }, 3000).send, "cap");
});

test("connection timeout", () => {
  assert.equal(connectTimedOut(100, 45099), false);
  assert.equal(connectTimedOut(100, 45100), true);
  assert.equal(connectTimedOut(0, 999, 1000), false);
});

test("backoff: base * factor^n capped", () => {
  const p = { baseMs: 500, factor: 2, maxMs: 8000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, p)), [500, 1000, 2000, 4000, 8000, 8000, 8000]);
  assert.equal(backoffDelay(-1, p), 500);
  assert.equal(backoffDelay(2, { baseMs: 1000, maxMs: 60000 }), 4000, "factor defaults to 2");
});

test("WHEP retry schedule: 0, 200 ms x 10, then 500 * 2^k up to 60 s", () => {
  const delays = Array.from({ length: 22 }, (_, i) => whepRetryDelay(i));
  assert.deepEqual(delays, [0, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]);
});

test("WHEP: which answers are retried", () => {
  for (const s of [0, 404, 429, 500, 502, 503]) assert.equal(whepShouldRetry(s), true, String(s));
  for (const s of [400, 401, 403, 405, 415]) assert.equal(whepShouldRetry(s), false, String(s));
});

test("warm-up statuses: 404, 409, 429, 5xx", () => {
  for (const s of [404, 409, 429, 500, 503, 599]) assert.equal(isWarmupStatus(s), true, String(s));
  for (const s of [0, 200, 400, 401, 403, 405, 410, 600]) assert.equal(isWarmupStatus(s), false, String(s));
});

test("bounded wait: released by DONE at once, else by a TICK at the deadline; once only", () => {
  const w = startWait(1000, DELETE_TIMEOUT_MS);
  assert.equal(w.deadline, 3000);
  assert.equal(waitStep(w, "TICK", 2999).release, null);
  const done = waitStep(w, "DONE", 1500);
  assert.equal(done.release, "done");
  assert.equal(waitStep(done.wait, "TICK", 5000).release, null, "released once");
  const late = waitStep(w, "TICK", 3000);
  assert.equal(late.release, "timeout");
  assert.equal(waitStep(late.wait, "DONE", 3001).release, null, "a late DONE changes nothing");
  assert.equal(waitStep(startWait(0, 0), "TICK", 0).release, "timeout", "a zero timeout releases at once");
  assert.equal(waitStep(startWait(0, -5), "TICK", 0).release, "timeout");
});

test("teardown waits: resource DELETE 2 s; the stream DELETE waits a little longer for the WHIP session", () => {
  assert.equal(DELETE_TIMEOUT_MS, 2000);
  assert.ok(STREAM_DELETE_WAIT_MS > DELETE_TIMEOUT_MS, "the WHIP disconnect's own bound ends first");
  assert.equal(STREAM_DELETE_WAIT_MS, 2500);
});

// --- WHEP player decisions -------------------------------------------------------------

/** A WHEP machine driven by hand: `feed` one event at `at`, `tick` runs TICKs at each deadline. */
function whep(policy) {
  let state = initialWhepState(policy);
  let t = 0;
  const m = {
    get state() {
      return state;
    },
    get t() {
      return t;
    },
    feed(event, at = t) {
      assert.ok(at >= t, "time never goes back");
      t = at;
      const r = whepStep(state, event, t);
      state = r.state;
      return r.actions;
    },
    /** Jumps to the next deadline and TICKs there. */
    tick() {
      const at = whepDeadline(state);
      assert.notEqual(at, null, "something is scheduled");
      return m.feed({ type: "TICK" }, Math.max(t, at));
    },
    /** START + OFFER_READY at `at`: returns the first POST's actions. */
    begin(at = 0) {
      assert.deepEqual(m.feed({ type: "START" }, at), [{ type: "NEW_PEER" }]);
      return m.feed({ type: "OFFER_READY" }, at);
    },
    /** The attempt number of the POST in flight. */
    get attempt() {
      return state.attempts - 1;
    },
  };
  return m;
}

test("WHEP: the first POST goes out as soon as the offer is ready; 2xx -> APPLY, then PLAYING", () => {
  const m = whep();
  assert.deepEqual(m.begin(100), [{ type: "POST", attempt: 0 }]);
  assert.equal(m.state.phase, "posting");
  assert.deepEqual(m.feed({ type: "ANSWER", attempt: 0, status: 201 }, 150), [{ type: "APPLY", attempt: 0 }]);
  assert.equal(m.state.phase, "connecting");
  assert.deepEqual(m.feed({ type: "PLAYING" }, 400), [{ type: "PLAYING" }]);
  assert.equal(m.state.phase, "playing");
  assert.equal(whepDeadline(m.state), null, "nothing scheduled while playing");
  assert.deepEqual(m.feed({ type: "PLAYING" }, 500), [], "reported once");
});

test("WHEP: 404s retried on the schedule, never beyond the 60 s budget, then a clear give-up", () => {
  assert.equal(WHEP_RETRY_BUDGET_MS, 60000);
  const m = whep();
  m.begin(1000);
  const posts = [1000];
  for (;;) {
    const out = m.feed({ type: "ANSWER", attempt: m.attempt, status: 404 }, m.t + 20);
    const giveUp = out.find((a) => a.type === "GIVE_UP");
    if (giveUp) {
      assert.equal(giveUp.message, "Dream output did not become available within 60 s");
      assert.equal(giveUp.message, WHEP_MESSAGES.noOutput(60000));
      break;
    }
    assert.deepEqual(out, [], "nothing until the next deadline");
    const next = m.tick();
    assert.equal(next.length, 1);
    assert.equal(next[0].type, "POST");
    posts.push(m.t);
    assert.ok(posts.length < 100, "bounded");
  }
  assert.equal(m.state.phase, "gave-up");
  assert.equal(whepDeadline(m.state), null);
  // The gaps follow whepRetryDelay (each answer came 20 ms after its POST).
  const gaps = posts.slice(1).map((x, i) => x - posts[i] - 20);
  assert.deepEqual(gaps.slice(0, 12), [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 500, 1000]);
  // The last attempt is moved to the budget's end (the schedule would overshoot it).
  assert.equal(posts.at(-1), 1000 + 60000);
  assert.ok(posts.every((p) => p <= 61000));
  // After giving up nothing happens any more.
  assert.deepEqual(m.feed({ type: "ANSWER", attempt: m.attempt, status: 201 }, 70000), []);
  assert.deepEqual(m.feed({ type: "PEER_FAILED" }, 70000), []);
  assert.deepEqual(m.feed({ type: "TICK" }, 90000), []);
});

test("WHEP: 503, 429 and network errors share the 404 budget; other statuses give up at once", () => {
  const m = whep({ budgetMs: 5000 });
  m.begin(0);
  for (const status of [503, 429, 0]) {
    assert.deepEqual(m.feed({ type: "ANSWER", attempt: m.attempt, status }), []);
    assert.equal(m.tick()[0].type, "POST");
  }
  const rejected = whep();
  rejected.begin(0);
  assert.deepEqual(rejected.feed({ type: "ANSWER", attempt: 0, status: 403, detail: "Stream not owned by active session" }), [
    { type: "GIVE_UP", message: "WHEP playback failed: 403 (Stream not owned by active session)" },
  ]);
  const bare = whep();
  bare.begin(0);
  assert.equal(bare.feed({ type: "ANSWER", attempt: 0, status: 400 })[0].message, "WHEP playback failed: 400");
});

test("WHEP: an unanswered POST times out (10 s) as a network error; its late answer is ignored", () => {
  assert.equal(WHEP_REQUEST_TIMEOUT_MS, 10000);
  const m = whep();
  m.begin(0);
  assert.equal(whepDeadline(m.state), 10000);
  assert.deepEqual(m.feed({ type: "TICK" }, 9999), []);
  assert.deepEqual(m.feed({ type: "TICK" }, 10000), [], "retry scheduled, not sent yet");
  assert.equal(m.state.phase, "waiting");
  assert.equal(whepDeadline(m.state), 10200);
  assert.deepEqual(m.tick(), [{ type: "POST", attempt: 1 }]);
  // Attempt 0's answer arrives now: ignored (attempt 1 is in flight).
  assert.deepEqual(m.feed({ type: "ANSWER", attempt: 0, status: 201 }, 10300), []);
  assert.equal(m.state.phase, "posting");
  assert.deepEqual(m.feed({ type: "ANSWER", attempt: 1, status: 201 }, 10400), [{ type: "APPLY", attempt: 1 }]);
});

test("WHEP: a failed connection restarts with a fresh peer and backoff (1 s, 2 s, 4 s), then gives up after 3", () => {
  assert.equal(WHEP_MAX_RESTARTS, 3);
  const m = whep();
  m.begin(0);
  /** @type {number[]} */
  const restartDelays = [];
  for (let i = 0; i < 3; i++) {
    m.feed({ type: "ANSWER", attempt: m.attempt, status: 201 }, m.t + 10);
    m.feed({ type: "PLAYING" }, m.t + 10);
    const failedAt = m.t + 1000;
    assert.deepEqual(m.feed({ type: "PEER_FAILED" }, failedAt), [{ type: "CLOSE_PEER" }]);
    assert.equal(m.state.phase, "restarting");
    assert.deepEqual(m.feed({ type: "PEER_FAILED" }, failedAt), [], "one failure, one restart");
    assert.deepEqual(m.tick(), [{ type: "NEW_PEER" }]);
    restartDelays.push(m.t - failedAt);
    // The new negotiation gets a fresh 404 budget.
    assert.deepEqual(m.feed({ type: "OFFER_READY" }), [{ type: "POST", attempt: 0 }]);
  }
  assert.deepEqual(restartDelays, [1000, 2000, 4000]);
  m.feed({ type: "ANSWER", attempt: m.attempt, status: 201 }, m.t + 10);
  const out = m.feed({ type: "PEER_FAILED" }, m.t + 10);
  assert.deepEqual(out, [{ type: "GIVE_UP", message: "Dream output connection failed: peer connection failed (gave up after 3 restarts)" }]);
  assert.equal(m.state.phase, "gave-up");
});

test("WHEP: a connection that played long enough (30 s) before failing starts the restart count afresh", () => {
  const m = whep();
  m.begin(0);
  for (let i = 0; i < 10; i++) {
    m.feed({ type: "ANSWER", attempt: m.attempt, status: 201 }, m.t + 10);
    m.feed({ type: "PLAYING" }, m.t + 10);
    assert.deepEqual(m.feed({ type: "PEER_FAILED" }, m.t + 30000), [{ type: "CLOSE_PEER" }], `failure ${i + 1} after 30 s of play`);
    assert.equal(m.state.restarts, 1);
    m.tick();
    m.feed({ type: "OFFER_READY" });
  }
  // Short-lived connections count.
  for (let i = 0; i < 2; i++) {
    m.feed({ type: "ANSWER", attempt: m.attempt, status: 201 }, m.t + 10);
    m.feed({ type: "PLAYING" }, m.t + 10);
    m.feed({ type: "PEER_FAILED" }, m.t + 29999);
    m.tick();
    m.feed({ type: "OFFER_READY" });
  }
  assert.equal(m.state.restarts, 3);
  m.feed({ type: "ANSWER", attempt: m.attempt, status: 201 }, m.t + 10);
  assert.equal(m.feed({ type: "PEER_FAILED" }, m.t + 10)[0].type, "GIVE_UP");
});

test("WHEP: no frames within 20 s of the answer counts as a failed connection", () => {
  assert.equal(WHEP_PLAY_TIMEOUT_MS, 20000);
  const m = whep({ maxRestarts: 0 });
  m.begin(0);
  m.feed({ type: "ANSWER", attempt: 0, status: 201 }, 50);
  assert.equal(whepDeadline(m.state), 20050);
  assert.deepEqual(m.feed({ type: "TICK" }, 20049), []);
  assert.deepEqual(m.feed({ type: "TICK" }, 20050), [{ type: "GIVE_UP", message: "Dream output connection failed: no frames within 20 s of the answer (gave up after 0 restarts)" }]);
});

test("WHEP: a negotiation that cannot build its offer restarts like a failed connection; STOP ends everything", () => {
  const m = whep();
  m.feed({ type: "START" });
  assert.deepEqual(m.feed({ type: "PEER_FAILED", reason: "createOffer failed" }, 5), [{ type: "CLOSE_PEER" }]);
  assert.deepEqual(m.tick(), [{ type: "NEW_PEER" }]);
  m.feed({ type: "STOP" });
  assert.equal(m.state.phase, "stopped");
  assert.equal(whepDeadline(m.state), null);
  assert.deepEqual(m.feed({ type: "OFFER_READY" }), [], "late results after STOP are ignored");
  assert.deepEqual(m.feed({ type: "START" }), [], "a stopped player does not start again");
});
