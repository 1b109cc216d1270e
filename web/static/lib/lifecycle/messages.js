// @ts-check
/**
 * Every line the Dream page shows about a session, word for word.
 * @module lifecycle/messages
 */

/** Messages shown by the page. `LIVE_UPDATES_UNAVAILABLE` is quoted by the spec word for word. */
export const MESSAGES = Object.freeze({
  IDLE: "Ready to Dream",
  PREPARING: "Checking camera…",
  CREATING: "Creating your Dream stream…",
  CONNECTING: "Connecting to Dream…",
  WARMING_UP: "Dream is warming up…",
  WHIP_RETRY: "Dream is warming up — retrying the connection…",
  WAITING_OUTPUT: "Waiting for the first Dream frames…",
  LIVE: "Dream is live",
  RECONNECTING: "Connection lost — reconnecting…",
  STREAM_ENDED: "Dream stream ended on the server",
  STOPPED: "Dream stopped",
  NOT_CONFIGURED: "Dream is not configured on this server (no Daydream API key).",
  NOT_ACTIVE: "Dream did not become active. Please try again.",
  UPDATING_PROMPT: "Updating prompt…",
  PROMPT_UPDATED: "Prompt updated",
  PROMPT_SENT: "Sent — waiting for the stream",
  PROMPT_APPLIED: "Prompt applied",
  RELOAD_NOTICE: "This restarts the stream's pipeline (about 30 s)",
  STALLED: "Output stalled — reconnecting…",
  STALL_FAILED: "The output stopped and could not be restarted. Please try again.",
  LIVE_UPDATES_UNAVAILABLE: "Live updates unavailable — changes will apply on restart",
  PLAYER_FALLBACK: "Direct playback failed — showing Daydream's player instead",
});

/**
 * The status line when publishing (WHIP) gives up; `reason` is the WHIP client's own message
 * (the spec's error table, e.g. "WHIP offer failed: 502"), kept word for word.
 * @param {string} reason
 */
export const whipFailedMessage = (reason) => `Could not connect to Dream: ${reason}`;

/**
 * The status line when creating the stream fails; `reason` is the gateway's message.
 * @param {string} reason
 */
export const createFailedMessage = (reason) => `Could not create the Dream stream: ${reason}`;
