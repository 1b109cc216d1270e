// @ts-check
/**
 * Watching the stream's status. Two sources feed the same facts:
 * - the status EVENT STREAM (`GET …/events`, Server-Sent Events), opened when watching
 *   starts (the WHIP offer was answered): while it is open nothing is polled, and each
 *   message counts as a successful poll. Its first message must come within
 *   `events.openTimeoutMs`, then one at least every `events.silenceMs`; an error before the
 *   first message (a gateway without the route answers 404/405), the browser giving up on
 *   it, `events.maxErrors` errors in a row, or silence: it is closed and polling takes over
 *   for the rest of the session. An error while open counts as a failed poll. A pushed
 *   `ended` phase ends the session like a 404 for our own stream;
 * - POLLING (every second while warming up, every 5 s once live, every second again while
 *   live polls fail or while a prompt update waits for the status to confirm it).
 * Then the warm-up grace (failures and "not active" tolerated for 60 s from creation)
 * followed by the post-poll grace (3 s and one more poll, then "did not become active"),
 * and the live verdicts (2 consecutive failed polls: "connection lost"; a 404/403 for our
 * own stream: it ended). Status bodies are read by `../readers.js` only.
 * @module lifecycle/watch
 */

import { livePollVerdict, readStatus } from "../readers.js";
import { streamPaths } from "./stream.js";
import { MESSAGES } from "./messages.js";

/** @typedef {import("./types.js").Intent} Intent */

/**
 * @typedef {object} WatchSlice
 * @property {boolean} statusActive the status reported an active stream
 * @property {number | null} nextPollAt
 * @property {boolean} pollInFlight
 * @property {number} pollFailures consecutive failed status polls (or event stream errors) while live
 * @property {number | null} warmupEndsAt end of the warm-up grace (creation + `warmupGraceMs`)
 * @property {number | null} postGraceEndsAt end of the post-poll grace, once it started
 * @property {"off" | "opening" | "open" | "failed"} events the status event stream ("failed": polling instead)
 * @property {number} eventErrors consecutive errors of the open event stream
 * @property {number | null} eventsDueBy the event stream's next message is due by then (first message, or silence)
 * @property {import("../readers.js").StatusView | null} view the latest status read
 * @property {import("../readers.js").StreamPhase | null} pushedPhase the latest phase the event stream pushed
 * @property {string | null} reason its plain-language reason
 */

/** @returns {WatchSlice} */
export function initialWatch() {
  return { statusActive: false, nextPollAt: null, pollInFlight: false, pollFailures: 0, warmupEndsAt: null, postGraceEndsAt: null, events: "off", eventErrors: 0, eventsDueBy: null, view: null, pushedPhase: null, reason: null };
}

/**
 * Facts a status body gives, whoever delivered it.
 * @param {WatchSlice} s mutated
 * @param {unknown} body
 */
export function applyStatus(s, body) {
  const view = readStatus(body);
  s.view = view;
  if (view.active) s.statusActive = true;
}

/** @type {import("./types.js").Reducer<WatchSlice>} */
export function watch(slice, event, now, ctx) {
  const s = { ...slice };
  /** @type {Intent[]} */
  const actions = [];
  const o = ctx.options;
  const { phase, stream, publish } = ctx.state;
  const poll = () => {
    if (!stream.id) return;
    s.pollInFlight = true;
    s.nextPollAt = null;
    actions.push({ type: "POLL_STATUS", session: ctx.state.session, streamId: stream.id, timeoutMs: o.pollTimeoutMs });
  };
  /** The event stream is given up: polling from now on (the next poll at once). */
  const fallBack = () => {
    actions.push({ type: "CLOSE_EVENTS" });
    s.events = "failed";
    s.eventsDueBy = null;
    s.eventErrors = 0;
    if (!s.pollInFlight) poll();
  };
  /** Polling interval once live: sooner while polls fail or an update waits for confirmation. */
  const liveInterval = () => (s.pollFailures > 0 || ctx.state.updates.awaiting !== null ? o.lostPollIntervalMs : o.livePollIntervalMs);
  switch (event.type) {
    case "CREATED":
      s.warmupEndsAt = now + o.warmupGraceMs;
      break;
    case "WHIP_RESULT":
      if (!event.ok || !stream.id) break;
      // Answered: watching starts, by events when the gateway has them, else by polling at once.
      if (s.events === "off") {
        s.events = "opening";
        s.eventsDueBy = now + o.events.openTimeoutMs;
        actions.push({ type: "OPEN_EVENTS", session: ctx.state.session, streamId: stream.id, url: streamPaths(stream.id).events });
      } else if (s.events === "failed") s.nextPollAt = now;
      break;
    case "TICK":
      if (s.eventsDueBy !== null && now >= s.eventsDueBy) fallBack();
      if (s.nextPollAt !== null && !s.pollInFlight && now >= s.nextPollAt) poll();
      // Warm-up window, then the post-poll grace, then give up.
      if (warmingUp(ctx.state, s)) {
        if (s.postGraceEndsAt === null) {
          if (s.warmupEndsAt !== null && now >= s.warmupEndsAt) {
            s.postGraceEndsAt = now + o.postPollGraceMs;
            // One more look: a poll (the event stream pushes by itself).
            if (!s.pollInFlight && publish.answered && s.events !== "open") poll();
          }
        } else if (now >= s.postGraceEndsAt) actions.push({ type: "FAIL", message: MESSAGES.NOT_ACTIVE });
      }
      break;
    case "STATUS_RESULT":
      s.pollInFlight = false;
      if (phase === "live") {
        const verdict = livePollVerdict(event);
        // Our own stream answers 404 (ended) or 403 (no longer ours): it is over.
        if (verdict === "gone") return { slice: s, actions: [{ type: "FAIL", message: MESSAGES.STREAM_ENDED }] };
        if (verdict === "failed") s.pollFailures += 1;
        else if (verdict === "ok") s.pollFailures = 0;
        // A failed poll is a suspicion: check again soon rather than in 5 s.
        s.nextPollAt = now + liveInterval();
      } else {
        s.nextPollAt = now + o.pollIntervalMs;
      }
      // The event stream took over meanwhile (a poll was in flight when it opened): no more polls.
      if (s.events === "open" || s.events === "opening") s.nextPollAt = null;
      if (event.ok) applyStatus(s, event.body);
      break;
    case "STATUS_EVENT":
      if (s.events !== "opening" && s.events !== "open") break;
      if (event.phase === "ended") return { slice: s, actions: [{ type: "FAIL", message: MESSAGES.STREAM_ENDED }] };
      s.events = "open";
      s.eventErrors = 0;
      s.pollFailures = 0;
      s.eventsDueBy = now + o.events.silenceMs;
      s.pushedPhase = event.phase;
      s.reason = event.reason;
      applyStatus(s, event.status);
      break;
    case "EVENTS_ERROR":
      if (s.events === "opening" || event.closed) {
        if (s.events === "opening" || s.events === "open") fallBack();
        break;
      }
      if (s.events !== "open") break;
      // The browser reconnects by itself; meanwhile it is a failed poll.
      s.eventErrors += 1;
      if (phase === "live") s.pollFailures += 1;
      if (s.eventErrors >= o.events.maxErrors) fallBack();
      break;
    case "PATCH_RESULT":
      // A prompt update now waits for the status to show it: look again soon.
      if (event.ok && ctx.state.updates.awaiting !== null && s.nextPollAt !== null) s.nextPollAt = Math.min(s.nextPollAt, now + o.lostPollIntervalMs);
      break;
    case "WENT_LIVE":
      s.postGraceEndsAt = null;
      break;
    case "TEARDOWN":
      if (s.events === "opening" || s.events === "open") actions.push({ type: "CLOSE_EVENTS" });
      return { slice: initialWatch(), actions };
  }
  return { slice: s, actions };
}

/**
 * Still waiting for the stream to become active after the countdown (the grace windows run).
 * @param {Readonly<import("./types.js").LifecycleState>} state
 * @param {WatchSlice} s
 */
function warmingUp(state, s) {
  return state.phase === "connecting" && state.output.countdownDone && state.stream.createdAt !== null && !s.statusActive && !state.output.playing;
}

/**
 * Live, and the last `lostAfterFailures` status polls (or event stream errors) failed.
 * @param {Readonly<import("./types.js").LifecycleState>} state
 * @param {import("./options.js").LifecycleOptions} options
 */
export function connectionLost(state, options) {
  return state.phase === "live" && state.watch.pollFailures >= options.lostAfterFailures;
}

/**
 * When a TICK has something to do: a poll due, the event stream's next message overdue, the
 * warm-up grace running out, the post-poll grace ending (null: none).
 * @param {Readonly<import("./types.js").LifecycleState>} state
 * @returns {number | null}
 */
export function watchDeadline(state) {
  const s = state.watch;
  /** @type {number[]} */
  const times = [];
  if (s.nextPollAt !== null && !s.pollInFlight) times.push(s.nextPollAt);
  if (s.eventsDueBy !== null) times.push(s.eventsDueBy);
  if (s.postGraceEndsAt !== null) times.push(s.postGraceEndsAt);
  else if (s.warmupEndsAt !== null && warmingUp(state, s)) times.push(s.warmupEndsAt);
  return times.length ? Math.min(...times) : null;
}
