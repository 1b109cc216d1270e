// @ts-check
/**
 * Camera capture (spec "Capture smoothness" and "Webcam lifecycle"): the webcam
 * (640x480 ideal, at most 30 fps, front camera, no audio) is drawn to a 512x512 canvas,
 * cover-cropped, centred and mirrored, at ~30 fps; the canvas is streamed with
 * `captureStream(30)` and `contentHint = "motion"`.
 *
 * The pure helpers (constraints, crop, throttle, error messages) are unit-tested; the
 * {@link CanvasCapture} class only wires them to the browser.
 *
 * @module capture
 */

import { OUTPUT_SIZE } from "./params.js";

/** Capture frame rate (draw loop and captureStream). */
export const CAPTURE_FPS = 30;

/** getUserMedia constraints. @type {MediaStreamConstraints} */
export const CAMERA_CONSTRAINTS = Object.freeze({
  video: Object.freeze({
    width: { ideal: 640 },
    height: { ideal: 480 },
    frameRate: { max: CAPTURE_FPS },
    facingMode: "user",
  }),
  audio: false,
});

/** Camera error messages shown to the user. */
export const CAMERA_MESSAGES = Object.freeze({
  DENIED: "Camera permission denied. Allow camera access for this page and try again.",
  NOT_FOUND: "No camera found. Connect a camera and try again.",
  IN_USE: "Camera is in use by another application. Close it and try again.",
  UNAVAILABLE: "Camera access is not available here (a secure page is required).",
});

/**
 * A clear message for a getUserMedia failure.
 *
 * @param {unknown} error
 * @returns {string}
 */
export function cameraErrorMessage(error) {
  const name = error && typeof error === "object" && "name" in error ? String(error.name) : "";
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return CAMERA_MESSAGES.DENIED;
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return CAMERA_MESSAGES.NOT_FOUND;
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return CAMERA_MESSAGES.IN_USE;
    case "UnavailableError":
      return CAMERA_MESSAGES.UNAVAILABLE;
    default: {
      const message = error instanceof Error ? error.message : String(error);
      return `Camera error: ${message}`;
    }
  }
}

/**
 * Source rectangle that covers a `dw` x `dh` destination (centred crop, no distortion).
 *
 * @param {number} sw source width
 * @param {number} sh source height
 * @param {number} dw destination width
 * @param {number} dh destination height
 * @returns {{ sx: number, sy: number, sw: number, sh: number }}
 */
export function coverCrop(sw, sh, dw, dh) {
  if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0) return { sx: 0, sy: 0, sw: Math.max(0, sw), sh: Math.max(0, sh) };
  const scale = Math.max(dw / sw, dh / sh);
  const cw = dw / scale;
  const ch = dh / scale;
  return { sx: (sw - cw) / 2, sy: (sh - ch) / 2, sw: cw, sh: ch };
}

/**
 * Draw-loop throttle: whether a frame is due at `now` (display refresh callbacks arrive
 * at 60+ Hz; a few ms of slack keeps a 60 Hz display at an even 30 fps).
 *
 * @param {number} now
 * @param {number | null} lastDrawAt
 * @param {number} [fps]
 * @returns {boolean}
 */
export function frameDue(now, lastDrawAt, fps = CAPTURE_FPS) {
  if (lastDrawAt === null) return true;
  return now - lastDrawAt >= 1000 / fps - 4;
}

/**
 * Camera permission as the Permissions API reports it ("unknown" if unsupported).
 *
 * @param {{ query(d: { name: any }): Promise<{ state: string }> } | undefined} permissions
 * @returns {Promise<"granted" | "denied" | "prompt" | "unknown">}
 */
export async function cameraPermission(permissions) {
  if (!permissions || typeof permissions.query !== "function") return "unknown";
  try {
    const status = await permissions.query({ name: "camera" });
    return status.state === "granted" || status.state === "denied" || status.state === "prompt" ? status.state : "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * Pre-check before creating a (paid) stream: when the Permissions API says the camera is
 * already granted, the getUserMedia probe is skipped; otherwise a short probe asks for
 * permission (and finds missing/busy cameras) and releases the camera at once.
 *
 * @param {{ getUserMedia(c: MediaStreamConstraints): Promise<MediaStream> } | undefined} mediaDevices
 * @param {Parameters<typeof cameraPermission>[0]} permissions
 * @returns {Promise<{ probed: boolean }>} rejects with the getUserMedia error
 */
export async function precheckCamera(mediaDevices, permissions) {
  if (!mediaDevices || typeof mediaDevices.getUserMedia !== "function") {
    throw Object.assign(new Error(CAMERA_MESSAGES.UNAVAILABLE), { name: "UnavailableError" });
  }
  const state = await cameraPermission(permissions);
  if (state === "granted") return { probed: false };
  const probe = await mediaDevices.getUserMedia(CAMERA_CONSTRAINTS);
  for (const track of probe.getTracks()) track.stop();
  return { probed: true };
}

/**
 * Webcam -> mirrored, cover-cropped 512x512 canvas -> `captureStream(30)`.
 * `start()` acquires the camera, `stop()` releases it (and the canvas track) at once.
 */
export class CanvasCapture {
  /**
   * @param {{ document?: Document, mediaDevices?: MediaDevices, size?: number, fps?: number }} [options]
   */
  constructor(options = {}) {
    this.document = options.document ?? document;
    this.mediaDevices = options.mediaDevices ?? navigator.mediaDevices;
    this.size = options.size ?? OUTPUT_SIZE;
    this.fps = options.fps ?? CAPTURE_FPS;
    /** @type {MediaStream | null} */
    this.camera = null;
    /** @type {MediaStream | null} canvas stream (what is published) */
    this.stream = null;
    /** @type {HTMLVideoElement | null} */
    this.video = null;
    /** @type {HTMLCanvasElement | null} */
    this.canvas = null;
    /** @type {CanvasRenderingContext2D | null} */
    this.ctx = null;
    /** @type {number | null} */
    this.lastDrawAt = null;
    this.running = false;
    /** @type {number | null} */
    this.raf = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    this.generation = 0;
  }

  /**
   * Opens the camera and starts the draw loop.
   * @returns {Promise<MediaStream>} the canvas stream; rejects with the getUserMedia error
   */
  async start() {
    if (this.stream) return this.stream;
    const generation = ++this.generation;
    if (!this.mediaDevices || typeof this.mediaDevices.getUserMedia !== "function") {
      throw Object.assign(new Error(CAMERA_MESSAGES.UNAVAILABLE), { name: "UnavailableError" });
    }
    const camera = await this.mediaDevices.getUserMedia(CAMERA_CONSTRAINTS);
    if (generation !== this.generation) {
      // stop() was called while the camera was opening: release it at once.
      for (const track of camera.getTracks()) track.stop();
      throw Object.assign(new Error("Camera start cancelled"), { name: "AbortError" });
    }
    this.camera = camera;
    const video = this.document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.autoplay = true;
    video.srcObject = camera;
    this.video = video;
    try {
      await video.play();
    } catch {
      // Autoplay of a muted element is allowed; frames are drawn once data arrives anyway.
    }
    const canvas = this.document.createElement("canvas");
    canvas.width = this.size;
    canvas.height = this.size;
    this.canvas = canvas;
    const ctx = canvas.getContext("2d", { alpha: false });
    if (!ctx) throw new Error("Canvas 2D is not available");
    this.ctx = ctx;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.size, this.size);
    this.running = true;
    this.draw(performance.now());
    const stream = canvas.captureStream(this.fps);
    for (const track of stream.getVideoTracks()) {
      if ("contentHint" in track) track.contentHint = "motion";
    }
    this.stream = stream;
    this.loop();
    return stream;
  }

  loop() {
    if (!this.running) return;
    const doc = this.document;
    if (!doc.hidden && typeof requestAnimationFrame === "function") {
      this.raf = requestAnimationFrame((t) => {
        this.raf = null;
        this.draw(t);
        this.loop();
      });
    } else {
      // Hidden tabs get no animation frames; keep frames flowing with a timer.
      this.timer = setTimeout(() => {
        this.timer = null;
        this.draw(performance.now());
        this.loop();
      }, 1000 / this.fps);
    }
  }

  /** @param {number} now */
  draw(now) {
    const video = this.video;
    const ctx = this.ctx;
    if (!this.running || !video || !ctx || !frameDue(now, this.lastDrawAt, this.fps)) return;
    if (video.readyState < 2 || video.videoWidth === 0) return;
    this.lastDrawAt = now;
    const size = this.size;
    const crop = coverCrop(video.videoWidth, video.videoHeight, size, size);
    ctx.save();
    ctx.translate(size, 0);
    ctx.scale(-1, 1);
    ctx.drawImage(video, crop.sx, crop.sy, crop.sw, crop.sh, 0, 0, size, size);
    ctx.restore();
  }

  /** Releases the camera and the canvas track immediately. Safe to call any time. */
  stop() {
    this.generation++;
    this.running = false;
    if (this.raf !== null) cancelAnimationFrame(this.raf);
    if (this.timer !== null) clearTimeout(this.timer);
    this.raf = null;
    this.timer = null;
    for (const track of this.camera?.getTracks() ?? []) track.stop();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    if (this.video) {
      this.video.pause();
      this.video.srcObject = null;
    }
    this.camera = null;
    this.stream = null;
    this.video = null;
    this.canvas = null;
    this.ctx = null;
    this.lastDrawAt = null;
  }
}
