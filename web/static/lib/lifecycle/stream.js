// @ts-check
/**
 * The session's stream: config check and camera pre-check (both must pass), create,
 * a 409 (the session's old stream is deleted, the create retried once), the stream's
 * identity once created, and ending it (DELETE, or the end beacon when the tab closes).
 * @module lifecycle/stream
 */

import { DEFAULT_MODEL_ID, createPayload } from "../params.js";
import { MESSAGES, createFailedMessage } from "./messages.js";

/** @typedef {import("./types.js").Intent} Intent */

/**
 * @typedef {object} StreamSlice
 * @property {import("./types.js").Mode | null} mode from the config (kept across sessions)
 * @property {boolean} configOk
 * @property {boolean} cameraOk camera pre-check passed
 * @property {boolean} cameraReady capture stream running
 * @property {string | null} id the stream's id once created
 * @property {string} modelId the model the stream runs (every PATCH repeats it)
 * @property {string | null} playbackId output_playback_id (iframe playback)
 * @property {number | null} createdAt
 * @property {string | null} replacing id of the old stream being deleted after a 409
 * @property {boolean} replaced a 409 was already handled this session
 */

/**
 * @param {import("./types.js").Mode | null} [mode]
 * @returns {StreamSlice}
 */
export function initialStream(mode = null) {
  return { mode, configOk: false, cameraOk: false, cameraReady: false, id: null, modelId: DEFAULT_MODEL_ID, playbackId: null, createdAt: null, replacing: null, replaced: false };
}

/**
 * Gateway paths for a stream.
 * @param {string} id
 */
export function streamPaths(id) {
  const base = `/api/daydream/streams/${encodeURIComponent(id)}`;
  return { stream: base, status: `${base}/status`, events: `${base}/events`, parameters: `${base}/parameters`, whip: `${base}/whip`, whep: `${base}/whep` };
}

/** @type {import("./types.js").Reducer<StreamSlice>} */
export function stream(slice, event, now, ctx) {
  const s = { ...slice };
  /** @type {Intent[]} */
  const actions = [];
  const session = ctx.state.session;
  switch (event.type) {
    case "CLICK_DREAM":
      actions.push({ type: "CHECK_CONFIG", session }, { type: "CAMERA_PRECHECK", session });
      break;
    case "CONFIG_OK":
      if (!event.configured) actions.push({ type: "FAIL", message: MESSAGES.NOT_CONFIGURED });
      else {
        s.mode = event.mode;
        s.configOk = true;
      }
      break;
    case "CAMERA_OK":
      s.cameraOk = true;
      break;
    case "CREATE":
      actions.push({ type: "CREATE_STREAM", session, payload: createPayload(ctx.state.updates.prompt) }, { type: "START_CAMERA", session });
      break;
    case "CAMERA_READY":
      s.cameraReady = true;
      break;
    case "CREATED": {
      s.id = event.stream.id;
      s.playbackId = event.stream.output_playback_id ?? null;
      const modelId = event.stream.params?.model_id;
      if (typeof modelId === "string" && modelId !== "") s.modelId = modelId;
      s.createdAt = now;
      break;
    }
    case "CREATE_FAILED":
      if (event.status === 409 && event.activeStreamId && !s.replaced) {
        s.replaced = true;
        s.replacing = event.activeStreamId;
        actions.push({ type: "DELETE_STREAM", session, id: event.activeStreamId });
      } else actions.push({ type: "FAIL", message: createFailedMessage(event.message) });
      break;
    case "DELETED":
      if (s.replacing !== event.id) break;
      s.replacing = null;
      actions.push({ type: "CREATE_STREAM", session, payload: createPayload(ctx.state.updates.prompt) });
      break;
    case "TEARDOWN":
      if (s.id) {
        if (event.end === "beacon") actions.push({ type: "BEACON_END", streamId: s.id });
        else actions.push({ type: "DELETE_STREAM", session, id: s.id });
      }
      actions.push({ type: "STOP_CAMERA" });
      return { slice: initialStream(s.mode), actions };
  }
  return { slice: s, actions };
}
