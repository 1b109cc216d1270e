// @ts-check
/**
 * Pure rules of "keep what you made": the recording's clock (a visible timer, the 60 s
 * limit), the container type the browser can write, and file names. No DOM, no timers: the
 * shell (`keep.js`) sleeps until {@link recordingClock}'s `nextAt`.
 * @module recording
 */

/** Longest recording. */
export const RECORD_LIMIT_MS = 60000;

/** WebM types in order of preference. */
export const WEBM_TYPES = Object.freeze(["video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm"]);

/**
 * The first WebM type the recorder supports, or null.
 * @param {(type: string) => boolean} isSupported `MediaRecorder.isTypeSupported`
 */
export function pickWebmType(isSupported) {
  return WEBM_TYPES.find((t) => isSupported(t)) ?? null;
}

/** @param {number} s whole seconds */
const clock = (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;

/**
 * The recording's timer at `now`: the label to show, whether the limit is reached, and when
 * the label changes next (the next whole second, or the limit). Exact: at `nextAt` the label
 * changes or `done` is true.
 * @param {number} startedAt
 * @param {number} now
 * @param {number} [limitMs]
 * @returns {{ label: string, done: boolean, nextAt: number | null }}
 */
export function recordingClock(startedAt, now, limitMs = RECORD_LIMIT_MS) {
  const elapsed = Math.max(0, now - startedAt);
  if (elapsed >= limitMs) return { label: `${clock(Math.floor(limitMs / 1000))} / ${clock(Math.floor(limitMs / 1000))}`, done: true, nextAt: null };
  const seconds = Math.floor(elapsed / 1000);
  return { label: `${clock(seconds)} / ${clock(Math.floor(limitMs / 1000))}`, done: false, nextAt: startedAt + Math.min((seconds + 1) * 1000, limitMs) };
}

/**
 * A download's file name: `dream-2025-01-31-12-05-09.png`.
 * @param {"png" | "webm"} ext
 * @param {Date} date
 */
export function keepFileName(ext, date) {
  const p = (/** @type {number} */ x) => String(x).padStart(2, "0");
  return `dream-${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}-${p(date.getHours())}-${p(date.getMinutes())}-${p(date.getSeconds())}.${ext}`;
}
