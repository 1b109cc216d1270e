// @ts-check
/**
 * Watching the stream's status: polling (every second while warming up, every 5 s once
 * live, every second again while live polls fail), the warm-up grace (failures and "not
 * active" tolerated for 60 s from creation) followed by the post-poll grace (3 s and one
 * more poll, then "did not become active"), and the live verdicts (2 consecutive failed
 * polls: "connection lost"; a 404/403 for our own stream: it ended).
 *
 * Status bodies are read by `../readers.js` only. A second status source (pushed events)
 * would feed the same facts (`statusActive`) through {@link applyStatus}; only the polling
 * bookkeeping is specific to polls.
 * @module lifecycle/watch
 */

import { livePollVerdict, readStatus } from "../readers.js";
import { MESSAGES } from "./messages.js";

/** @typedef {import("./types.js").Intent} Intent */

/**
 * @typedef {object} WatchSlice
 * @property {boolean} statusActive the status endpoint reported an active stream
 * @property {number | null} nextPollAt
 * @property {boolean} pollInFlight
 * @property {number} pollFailures consecutive failed status polls while live (network error or 5xx)
 * @property {number | null} warmupEndsAt end of the warm-up grace (creation + `warmupGraceMs`)
 * @property {number | null} postGraceEndsAt end of the post-poll grace, once it started
 */

/** @returns {WatchSlice} */
export function initialWatch() {
  return { statusActive: false, nextPollAt: null, pollInFlight: false, pollFailures: 0, warmupEndsAt: null, postGraceEndsAt: null };
}

/**
 * Facts a status body gives, whoever delivered it.
 * @param {WatchSlice} s mutated
 * @param {unknown} body
 */
export function applyStatus(s, body) {
  if (readStatus(body).active) s.statusActive = true;
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
  switch (event.type) {
    case "CREATED":
      s.warmupEndsAt = now + o.warmupGraceMs;
      break;
    case "WHIP_RESULT":
      // Answered: the first poll goes out at once.
      if (event.ok) s.nextPollAt = now;
      break;
    case "TICK":
      if (s.nextPollAt !== null && !s.pollInFlight && now >= s.nextPollAt) poll();
      // Warm-up window, then the post-poll grace, then give up.
      if (warmingUp(ctx.state, s)) {
        if (s.postGraceEndsAt === null) {
          if (s.warmupEndsAt !== null && now >= s.warmupEndsAt) {
            s.postGraceEndsAt = now + o.postPollGraceMs;
            if (!s.pollInFlight && publish.answered) poll();
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
        s.nextPollAt = now + (s.pollFailures > 0 ? o.lostPollIntervalMs : o.livePollIntervalMs);
      } else {
        s.nextPollAt = now + o.pollIntervalMs;
      }
      if (event.ok) applyStatus(s, event.body);
      break;
    case "WENT_LIVE":
      s.postGraceEndsAt = null;
      break;
    case "TEARDOWN":
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
 * Live, and the last `lostAfterFailures` status polls failed (network error or 5xx).
 * @param {Readonly<import("./types.js").LifecycleState>} state
 * @param {import("./options.js").LifecycleOptions} options
 */
export function connectionLost(state, options) {
  return state.phase === "live" && state.watch.pollFailures >= options.lostAfterFailures;
}

/**
 * When a TICK has something to do: a poll due, the warm-up grace running out, the
 * post-poll grace ending (null: none).
 * @param {Readonly<import("./types.js").LifecycleState>} state
 * @returns {number | null}
 */
export function watchDeadline(state) {
  const s = state.watch;
  /** @type {number[]} */
  const times = [];
  if (s.nextPollAt !== null && !s.pollInFlight) times.push(s.nextPollAt);
  if (s.postGraceEndsAt !== null) times.push(s.postGraceEndsAt);
  else if (s.warmupEndsAt !== null && warmingUp(state, s)) times.push(s.warmupEndsAt);
  return times.length ? Math.min(...times) : null;
}
