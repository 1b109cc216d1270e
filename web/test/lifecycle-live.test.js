// The live-truth rules, one reducer at a time with an injected clock: the status event stream
// and its fallback to polling, latest-wins prompt updates and their confirmation, a WHIP peer
// "disconnected", the freeze watchdog; and the update planner (which changes reload).
import { test } from "node:test";
import assert from "node:assert/strict";

import { DEFAULT_OPTIONS, MESSAGES, createLifecycle, initialState } from "../static/lib/lifecycle.js";
import { watch } from "../static/lib/lifecycle/watch.js";
import { showsApplied, updates } from "../static/lib/lifecycle/updates.js";
import { publish } from "../static/lib/lifecycle/publish.js";
import { heal, watchingFrames } from "../static/lib/lifecycle/heal.js";
import { readStatus, readStatusEvent } from "../static/lib/readers.js";
import { planUpdate } from "../static/lib/params.js";

const PROMPT = "androgynous cartoon magical dj blue sparkle";

/** A whole state with some slices changed. */
function stateWith(patch = {}) {
  const s = /** @type {Record<string, any>} */ (initialState(PROMPT));
  for (const [key, value] of Object.entries(patch)) s[key] = value !== null && typeof value === "object" ? { ...s[key], ...value } : value;
  return /** @type {import("../static/lib/lifecycle.js").LifecycleState} */ (s);
}
const ctx = (state, options = DEFAULT_OPTIONS) => ({ state, options });
const types = (actions) => actions.map((a) => a.type);
const ONLINE = (data = {}) => ({ success: true, data: { state: "ONLINE", ...data } });

test("watch: the event stream opens when watching starts; no poll while it is opening or open", () => {
  const st = stateWith({ phase: "connecting", session: 2, stream: { id: "str_a" } });
  const opened = watch(st.watch, { type: "WHIP_RESULT", session: 2, ok: true }, 100, ctx(st));
  assert.deepEqual(opened.actions, [{ type: "OPEN_EVENTS", session: 2, streamId: "str_a", url: "/api/daydream/streams/str_a/events" }]);
  assert.equal(opened.slice.events, "opening");
  assert.equal(opened.slice.nextPollAt, null);
  assert.equal(opened.slice.eventsDueBy, 100 + DEFAULT_OPTIONS.events.openTimeoutMs);
  const msg = watch(opened.slice, { type: "STATUS_EVENT", session: 2, phase: "live", reason: "frames flowing", status: ONLINE() }, 200, ctx(st));
  assert.deepEqual(msg.actions, []);
  assert.equal(msg.slice.events, "open");
  assert.equal(msg.slice.statusActive, true, "a pushed body drives the same facts as a poll");
  assert.equal(msg.slice.reason, "frames flowing");
  assert.equal(msg.slice.eventsDueBy, 200 + DEFAULT_OPTIONS.events.silenceMs);
  assert.deepEqual(watch(msg.slice, { type: "TICK" }, 20000, ctx(st)).actions, [], "nothing to poll");
});

test("watch: an error before the first message (404/405 from a gateway without the route) falls back to polling at once", () => {
  const st = stateWith({ phase: "connecting", session: 1, stream: { id: "str_a" }, watch: { events: "opening", eventsDueBy: 5000 } });
  const r = watch(st.watch, { type: "EVENTS_ERROR", session: 1, closed: false }, 300, ctx(st));
  assert.deepEqual(types(r.actions), ["CLOSE_EVENTS", "POLL_STATUS"]);
  assert.equal(r.slice.events, "failed");
  assert.equal(r.slice.eventsDueBy, null);
  // A later WHIP answer (re-publish) polls; it never reopens the event stream.
  const again = watch({ ...r.slice, pollInFlight: false }, { type: "WHIP_RESULT", session: 1, ok: true }, 400, ctx(st));
  assert.deepEqual(again.actions, []);
  assert.equal(again.slice.nextPollAt, 400);
});

test("watch: errors while open count as failed polls; the third in a row, or the browser giving up, falls back", () => {
  const live = stateWith({ phase: "live", session: 1, stream: { id: "str_a" }, watch: { events: "open", eventsDueBy: 40000 } });
  let slice = live.watch;
  for (const at of [1000, 2000]) slice = watch(slice, { type: "EVENTS_ERROR", session: 1, closed: false }, at, ctx(live)).slice;
  assert.equal(slice.pollFailures, 2, "'connection lost' after two");
  assert.equal(slice.events, "open");
  const back = watch(slice, { type: "STATUS_EVENT", session: 1, phase: "live", reason: null, status: ONLINE() }, 2500, ctx(live));
  assert.equal(back.slice.pollFailures, 0, "a message: connected again");
  assert.equal(back.slice.eventErrors, 0);
  const third = watch(slice, { type: "EVENTS_ERROR", session: 1, closed: false }, 3000, ctx(live));
  assert.deepEqual(types(third.actions), ["CLOSE_EVENTS", "POLL_STATUS"]);
  const closed = watch(live.watch, { type: "EVENTS_ERROR", session: 1, closed: true }, 3000, ctx(live));
  assert.deepEqual(types(closed.actions), ["CLOSE_EVENTS", "POLL_STATUS"], "CLOSED by the browser: no reconnect coming");
  const silent = watch(live.watch, { type: "TICK" }, 40000, ctx(live));
  assert.deepEqual(types(silent.actions), ["CLOSE_EVENTS", "POLL_STATUS"], "no message within the silence limit");
});

test("watch: a pushed 'ended' ends the session like a 404 for our own stream", () => {
  for (const phase of /** @type {const} */ (["connecting", "live"])) {
    const st = stateWith({ phase, stream: { id: "str_a" }, watch: { events: "open" } });
    const r = watch(st.watch, { type: "STATUS_EVENT", session: 0, phase: "ended", reason: "the stream was deleted", status: null }, 0, ctx(st));
    assert.deepEqual(r.actions, [{ type: "FAIL", message: MESSAGES.STREAM_ENDED }]);
  }
});

test("readStatusEvent: the event's data; anything else is ignored", () => {
  assert.deepEqual(readStatusEvent('{"phase":"degraded","reason":"your upload is sending 8 fps","status":{"success":true}}'), { phase: "degraded", reason: "your upload is sending 8 fps", status: { success: true } });
  assert.deepEqual(readStatusEvent('{"phase":"dancing","status":null}'), { phase: null, reason: null, status: null });
  for (const bad of ["", "not json", "[1]", "null", 5]) assert.equal(readStatusEvent(bad), null);
});

/** A lifecycle driven to live in local mode in front of a gateway with the event stream. */
function liveLifecycle(options = {}) {
  const lc = createLifecycle({ prompt: PROMPT, options });
  let out = [];
  const send = (event, t) => (out = lc.handle(event, t));
  send({ type: "CLICK_DREAM" }, 0);
  const session = lc.state.session;
  send({ type: "CONFIG_OK", session, configured: true, mode: "local" }, 0);
  send({ type: "CAMERA_OK", session }, 0);
  send({ type: "CREATED", session, stream: { id: "str_a", params: { model_id: "stabilityai/sd-turbo" } } }, 0);
  send({ type: "CAMERA_READY", session }, 0);
  send({ type: "WHIP_RESULT", session, ok: true }, 100);
  send({ type: "WHIP_STATE", session, state: "connected" }, 100);
  send({ type: "STATUS_EVENT", session, phase: "live", reason: null, status: ONLINE({ inference_status: { fps: 30, last_params_hash: "h1", last_params: { prompt: PROMPT }, last_params_update_time: 1000 } }) }, 200);
  send({ type: "PLAYING", session }, 300);
  assert.equal(lc.state.phase, "live");
  return { lc, session, send, get out() { return out; } };
}

test("updates: a burst of edits sends one PATCH with the last prompt, after the debounce; one in flight at a time", () => {
  const h = liveLifecycle();
  for (const [i, t] of [1000, 1050, 1100, 1140].entries()) {
    h.send({ type: "PROMPT_CHANGED", prompt: `p${i}` }, t);
    assert.deepEqual(h.out.filter((a) => a.type === "SEND_PATCH"), [], "nothing during the burst");
  }
  h.send({ type: "TICK" }, 1289);
  assert.deepEqual(h.out.filter((a) => a.type === "SEND_PATCH"), []);
  h.send({ type: "TICK" }, 1290);
  assert.deepEqual(h.out.find((a) => a.type === "SEND_PATCH")?.body, { pipeline: "streamdiffusion", params: { model_id: "stabilityai/sd-turbo", prompt: "p3" } });
  h.send({ type: "PROMPT_CHANGED", prompt: "p4" }, 1300);
  h.send({ type: "TICK" }, 1500);
  assert.deepEqual(h.out.filter((a) => a.type === "SEND_PATCH"), [], "the first one is still in flight");
  h.send({ type: "PATCH_RESULT", session: h.session, ok: true, status: 200 }, 1600);
  assert.equal(h.out.find((a) => a.type === "SEND_PATCH")?.body.params.prompt, "p4", "the newest goes out as soon as the first is answered");
});

test("updates: 'Sent — waiting for the stream' until the status shows the new hash, then 'Prompt applied'", () => {
  const h = liveLifecycle();
  h.send({ type: "PROMPT_CHANGED", prompt: "female x" }, 1000);
  h.send({ type: "TICK" }, 1150);
  assert.equal(h.lc.state.updates.line, MESSAGES.UPDATING_PROMPT);
  h.send({ type: "PATCH_RESULT", session: h.session, ok: true, status: 200, sentAt: 50_000 }, 1300);
  assert.equal(h.lc.state.updates.line, MESSAGES.PROMPT_SENT);
  const stale = { fps: 30, last_params_hash: "h1", last_params: { prompt: PROMPT } };
  h.send({ type: "STATUS_EVENT", session: h.session, phase: "live", reason: null, status: ONLINE({ inference_status: stale }) }, 1800);
  assert.equal(h.lc.state.updates.line, MESSAGES.PROMPT_SENT, "same hash: not yet");
  const applied = { fps: 30, last_params_hash: "h2", last_params_update_time: 50_500 };
  h.send({ type: "STATUS_EVENT", session: h.session, phase: "live", reason: null, status: ONLINE({ inference_status: applied }) }, 2400);
  assert.deepEqual(h.out.find((a) => a.type === "SHOW" && a.target === "update"), { type: "SHOW", target: "update", message: MESSAGES.PROMPT_APPLIED, clearAt: 2400 + DEFAULT_OPTIONS.promptUpdatedMs });
});

test("updates: no hash in the status (an upstream without it): 'Prompt updated' after the 2xx, as before", () => {
  const lc = createLifecycle({ prompt: PROMPT });
  const t = 0;
  lc.handle({ type: "CLICK_DREAM" }, t);
  const session = lc.state.session;
  lc.handle({ type: "CONFIG_OK", session, configured: true, mode: "local" }, t);
  lc.handle({ type: "CAMERA_OK", session }, t);
  lc.handle({ type: "CREATED", session, stream: { id: "str_a" } }, t);
  lc.handle({ type: "CAMERA_READY", session }, t);
  lc.handle({ type: "WHIP_RESULT", session, ok: true }, 100);
  lc.handle({ type: "STATUS_EVENT", session, phase: "live", reason: null, status: ONLINE({ inference_status: { fps: 30 } }) }, 200);
  lc.handle({ type: "PLAYING", session }, 300);
  lc.handle({ type: "PROMPT_CHANGED", prompt: "male x" }, 1000);
  lc.handle({ type: "TICK" }, 1150);
  lc.handle({ type: "PATCH_RESULT", session, ok: true, status: 204 }, 1200);
  assert.equal(lc.state.updates.line, MESSAGES.PROMPT_UPDATED);
});

test("updates: an unconfirmed update says 'Prompt updated' after applyTimeoutMs", () => {
  const h = liveLifecycle();
  h.send({ type: "PROMPT_CHANGED", prompt: "female x" }, 1000);
  h.send({ type: "TICK" }, 1150);
  h.send({ type: "PATCH_RESULT", session: h.session, ok: true, status: 200 }, 1300);
  h.send({ type: "TICK" }, 1300 + DEFAULT_OPTIONS.applyTimeoutMs);
  assert.equal(h.lc.state.updates.line, MESSAGES.PROMPT_UPDATED);
});

test("showsApplied: a new hash not older than the send, or the prompt itself", () => {
  const a = { prompt: "p", hashBefore: "h1", sentAt: 10_000, until: 0 };
  const view = (inference) => readStatus({ state: "ONLINE", inference_status: inference });
  assert.equal(showsApplied(a, view({ last_params_hash: "h1", last_params_update_time: 20_000 }), 1000), false, "same hash");
  assert.equal(showsApplied(a, view({ last_params_hash: "h2", last_params_update_time: 9_500 }), 1000), true, "within the clock skew");
  assert.equal(showsApplied(a, view({ last_params_hash: "h2", last_params_update_time: 8_000 }), 1000), false, "an older update");
  assert.equal(showsApplied(a, view({ last_params_hash: "h2" }), 1000), true, "no update time: the hash decides");
  assert.equal(showsApplied(a, view({ last_params: { prompt: "p" } }), 1000), true, "the prompt itself");
  assert.equal(showsApplied(a, view({}), 1000), false);
});

test("planUpdate: prompt, seed, scales are hot; model, size, ControlNet set reload (the model crate's rule)", () => {
  const cn = (scale, id = "a") => ({ model_id: id, conditioning_scale: scale, enabled: true });
  const current = { model_id: "m", prompt: "a", width: 512, controlnets: [cn(0.5)] };
  assert.deepEqual(planUpdate(current, { model_id: "m", prompt: "b" }), { body: { pipeline: "streamdiffusion", params: { model_id: "m", prompt: "b" } }, reload: false, changed: ["prompt"] });
  assert.equal(planUpdate(current, { prompt: "b", seed: 7, controlnets: [cn(0.9)] }).reload, false);
  assert.equal(planUpdate(current, { width: 768 }).reload, true);
  assert.equal(planUpdate(current, { controlnets: [cn(0.5, "b")] }).reload, true);
  assert.equal(planUpdate(current, { controlnets: [cn(0.5), cn(0.2, "b")] }).reload, true);
  const model = planUpdate(current, { model_id: "n" });
  assert.deepEqual([model.reload, model.body.params], [true, { model_id: "n" }]);
  assert.deepEqual(planUpdate({}, { prompt: "x" }).body.params, { model_id: "stabilityai/sd-turbo", prompt: "x" });
});

test("updates: a prompt change is hot (no reload announcement); the announcement's words", () => {
  const st = stateWith({ phase: "live", session: 1, stream: { id: "str_a", modelId: "m" }, output: { countdownDone: true, playing: true }, updates: { appliedPrompt: "a", prompt: "b" } });
  // The page only changes prompts (never a reload); the announcement follows the planner.
  const sent = updates(st.updates, { type: "SETTLE" }, 0, ctx(st));
  assert.deepEqual(types(sent.actions), ["SEND_PATCH", "SHOW"], "a prompt: no announcement");
  assert.equal(MESSAGES.RELOAD_NOTICE, "This restarts the stream's pipeline (about 30 s)");
});

test("publish: 'disconnected' for the grace ends the session and POSTs a new offer; 'connected' again within it keeps it", () => {
  const st = stateWith({ phase: "live", session: 1, stream: { id: "str_a", cameraReady: true }, publish: { answered: true, connected: true, windowStart: 0 } });
  const dis = publish(st.publish, { type: "WHIP_STATE", session: 1, state: "disconnected" }, 10_000, ctx(st));
  assert.equal(dis.slice.disconnectedUntil, 10_000 + DEFAULT_OPTIONS.disconnectGraceMs);
  const back = publish(dis.slice, { type: "WHIP_STATE", session: 1, state: "connected" }, 10_500, ctx(st));
  assert.equal(back.slice.disconnectedUntil, null);
  const early = publish(dis.slice, { type: "SETTLE" }, 10_999, ctx(st));
  assert.deepEqual(early.actions, []);
  const lost = publish(dis.slice, { type: "SETTLE" }, 11_000, ctx(st));
  assert.deepEqual(types(lost.actions), ["WHIP_DISCONNECT"], "the old session ends (DELETE)");
  assert.equal(lost.slice.answered, false);
  const again = publish(lost.slice, { type: "SETTLE" }, lost.slice.nextAt ?? 0, ctx({ ...st, publish: lost.slice }));
  assert.deepEqual(types(again.actions), ["WHIP_CONNECT"], "a full new POST, not an ICE restart");
});

test("heal: no stall while hidden, before watching, or while the camera reconnects; a frame ends a recovery", () => {
  const base = { phase: "live", session: 1, stream: { id: "str_a" }, publish: { answered: true }, output: { revealed: "whep", playing: true, whepUrl: "/w" } };
  assert.equal(watchingFrames(stateWith(base)), true);
  assert.equal(watchingFrames(stateWith({ ...base, heal: { visible: false } })), false);
  assert.equal(watchingFrames(stateWith({ ...base, publish: { answered: true, disconnectedUntil: 5 } })), false);
  assert.equal(watchingFrames(stateWith({ ...base, output: { revealed: "iframe", playing: true, whepUrl: "/w" } })), false);
  const st = stateWith(base);
  const armed = heal(st.heal, { type: "SETTLE" }, 1000, ctx(st));
  assert.equal(armed.slice.stallAt, 3000);
  const framed = heal(armed.slice, { type: "FRAME", session: 1 }, 2500, ctx(st));
  assert.equal(framed.slice.stallAt, 4500);
  const stalled = heal(framed.slice, { type: "TICK" }, 4500, ctx(st));
  assert.deepEqual(stalled.actions, [{ type: "STOP_PLAYER" }, { type: "START_PLAYER", session: 1, url: "/w" }]);
  const healed = heal(stalled.slice, { type: "FRAME", session: 1 }, 5200, ctx(st));
  assert.equal(healed.slice.episodeStart, null);
  assert.equal(healed.slice.stallAt, 7200);
  const hidden = stateWith({ ...base, heal: { visible: false } });
  assert.equal(heal(hidden.heal, { type: "SETTLE" }, 1000, ctx(hidden)).slice.stallAt, null);
});
