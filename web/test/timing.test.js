// Pure timing rules of the WHIP client and the WHEP player.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  GATHERING_BUDGET_MS,
  ICE_GATHERING_TIMEOUT_MS,
  CONNECTION_TIMEOUT_MS,
  backoffDelay,
  connectTimedOut,
  gatherDeadline,
  gatherStep,
  isWarmupStatus,
  startGathering,
  whepRetryDelay,
  whepShouldRetry,
} from "../static/lib/timing.js";

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
