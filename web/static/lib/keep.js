// @ts-check
/**
 * Keep what you made: Snapshot saves the output's current frame as PNG (a canvas of the
 * video's size), Record saves up to 60 s of the output as WebM (MediaRecorder on the output
 * stream) with a visible timer and Stop. Files are handed to the browser as downloads
 * (`<a download>` on a blob: URL); nothing is uploaded anywhere.
 * @module keep
 */

import { RECORD_LIMIT_MS, keepFileName, pickWebmType, recordingClock } from "./recording.js";

/**
 * Offers `blob` as a download named `name`.
 * @param {Blob} blob
 * @param {string} name
 */
function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The download has its own reference by then.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * Wires the Snapshot and Record buttons to the output video.
 * @param {{ video: HTMLVideoElement, snapshot: HTMLButtonElement, record: HTMLButtonElement, timer: HTMLElement, status: (message: string) => void }} els
 * @returns {{ setAvailable(available: boolean): void }}
 */
export function setupKeep(els) {
  /** @type {{ recorder: MediaRecorder, startedAt: number, timer: ReturnType<typeof setTimeout> | null } | null} */
  let recording = null;
  let available = false;

  const render = () => {
    els.snapshot.disabled = !available;
    els.record.disabled = !available && recording === null;
    els.record.textContent = recording ? "Stop recording" : "Record";
    els.record.setAttribute("aria-pressed", String(recording !== null));
    els.timer.hidden = recording === null;
  };

  els.snapshot.addEventListener("click", () => {
    const v = els.video;
    if (!v.videoWidth || !v.videoHeight) return;
    const canvas = document.createElement("canvas");
    canvas.width = v.videoWidth;
    canvas.height = v.videoHeight;
    canvas.getContext("2d")?.drawImage(v, 0, 0, canvas.width, canvas.height);
    canvas.toBlob((blob) => {
      if (blob) download(blob, keepFileName("png", new Date()));
    }, "image/png");
  });

  const tick = () => {
    if (!recording) return;
    const c = recordingClock(recording.startedAt, performance.now());
    els.timer.textContent = `REC ${c.label}`;
    if (c.done) {
      stop();
      return;
    }
    if (c.nextAt !== null) recording.timer = setTimeout(tick, Math.max(0, Math.ceil(c.nextAt - performance.now())));
  };

  const stop = () => {
    const r = recording;
    recording = null;
    if (!r) return;
    if (r.timer !== null) clearTimeout(r.timer);
    if (r.recorder.state !== "inactive") r.recorder.stop();
    render();
  };

  const start = () => {
    const stream = els.video.srcObject;
    const type = typeof MediaRecorder === "undefined" ? null : pickWebmType((t) => MediaRecorder.isTypeSupported(t));
    if (!(stream instanceof MediaStream) || type === null) {
      els.status("Recording is not available in this browser");
      return;
    }
    const recorder = new MediaRecorder(stream, { mimeType: type });
    /** @type {Blob[]} */
    const chunks = [];
    recorder.ondataavailable = (e) => {
      if (e.data.size > 0) chunks.push(e.data);
    };
    recorder.onstop = () => {
      if (chunks.length) download(new Blob(chunks, { type: "video/webm" }), keepFileName("webm", new Date()));
    };
    recorder.start(1000);
    recording = { recorder, startedAt: performance.now(), timer: null };
    render();
    tick();
  };

  els.record.addEventListener("click", () => (recording ? stop() : start()));
  render();

  return {
    /** Output frames are on screen (Snapshot/Record possible); when they go, a recording stops. */
    setAvailable(value) {
      if (available === value) return;
      available = value;
      if (!value) stop();
      render();
    },
  };
}

export { RECORD_LIMIT_MS };
