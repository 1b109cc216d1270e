// Daydream's official browser SDK (`@daydreamlive/browser`, pinned in package.json; its ESM
// build served as is from node_modules) in Chromium: `createBroadcast` publishes the fake camera
// and `createPlayer` plays the output, (1) straight against `dreamgate engine` from a page on
// ANOTHER origin (a tiny static server on another 127.0.0.1 port: the engine's WHIP/WHEP CORS),
// and (2) through `dreamgate serve`, from a page of the gateway's own origin (the SDK's fetch sends
// no cookie to another origin), with the gateway's absolute `Livepeer-Playback-URL`. Pass: frames
// decoded at 512x512 and the video's time advancing, the broadcast "live".
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";

import { WEB_DIR, freePort, launchBrowser, startEngine, startServe } from "./harness.mjs";

const KEY = "daydream_live_sdk_browser_e2e";
const SDK_JS = path.join(WEB_DIR, "node_modules", "@daydreamlive", "browser", "dist", "index.js");
const PAGE = `<!doctype html><meta charset="utf-8"><title>sdk</title><video id="out" muted playsinline></video>`;

/**
 * In the page: the fake camera broadcast to `whipUrl` with the official SDK, then its output
 * played from `broadcast.whepUrl`; resolves once frames are decoded and time advances.
 *
 * `attach`: "documented" is the SDK README's snippet as it stands (`await player.connect();
 * player.attachTo(video)`): it shows video only when the player's first WHEP POST is answered
 * 201, that is when the upstream holds that POST until the first output frame (Livepeer's native
 * WHEP; the engine's `whep_hold` knob). "on-playing" also attaches on each `stateChange` to
 * "playing": with an upstream that answers 404 until output exists (Daydream's documented WHEP,
 * the engine's default), the first POST gets a 404, `connect()` resolves with no stream yet
 * ("buffering"), and the player's own retry brings "playing" with a new stream.
 * @param {import("playwright-core").Page} page
 * @param {string} sdkUrl
 * @param {string} whipUrl
 * @param {"documented" | "on-playing"} attach
 */
async function broadcastAndPlay(page, sdkUrl, whipUrl, attach) {
  return await page.evaluate(
    async ({ sdkUrl, whipUrl, attach }) => {
      const { createBroadcast, createPlayer } = await import(sdkUrl);
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 512, height: 512 }, audio: false });
      const broadcast = createBroadcast({ whipUrl, stream });
      await broadcast.connect();
      const whepUrl = broadcast.whepUrl;
      const video = /** @type {HTMLVideoElement} */ (document.getElementById("out"));
      const player = createPlayer(whepUrl);
      /** @type {string[]} */
      const states = [];
      player.on("stateChange", (/** @type {string} */ state) => {
        states.push(state);
        if (attach === "on-playing" && state === "playing") {
          player.attachTo(video);
          void video.play().catch(() => {});
        }
      });
      await player.connect();
      player.attachTo(video);
      void video.play().catch(() => {});
      const started = Date.now();
      let t0 = -1;
      for (;;) {
        const frames = video.getVideoPlaybackQuality().totalVideoFrames;
        if (t0 < 0 && frames > 0) t0 = video.currentTime;
        if (frames > 20 && t0 >= 0 && video.currentTime > t0 + 1) {
          const played = { whepUrl, frames, currentTime: video.currentTime, width: video.videoWidth, states, broadcast: broadcast.state };
          await player.stop();
          await broadcast.stop();
          return played;
        }
        if (Date.now() - started > 60000) {
          throw new Error(`no playback: frames ${frames}, currentTime ${video.currentTime}, player states ${states.join(" > ")}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    { sdkUrl, whipUrl, attach },
  );
}

/**
 * The app: its page and the SDK's ES module from a tiny static server on another 127.0.0.1 port.
 * @returns {Promise<{ origin: string, close: () => Promise<void> }>}
 */
async function appServer() {
  const sdk = await readFile(SDK_JS);
  const app = http.createServer((req, res) => {
    if (req.url === "/sdk.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(sdk);
    } else {
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    }
  });
  const port = await freePort();
  await new Promise((r) => app.listen(port, "127.0.0.1", () => r(undefined)));
  return {
    origin: `http://127.0.0.1:${port}`,
    async close() {
      app.closeAllConnections();
      await new Promise((r) => app.close(() => r(undefined)));
    },
  };
}

/**
 * Creates a stream with the engine's REST API, then broadcasts and plays it with the SDK from the
 * app's page (another origin than the engine's).
 * @param {import("playwright-core").BrowserContext} context
 * @param {{ base: string }} engine
 * @param {"documented" | "on-playing"} attach
 */
async function playFromAnotherOrigin(context, engine, attach) {
  const app = await appServer();
  try {
    const res = await fetch(`${engine.base}/v1/streams`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ pipeline: "streamdiffusion", params: { model_id: "stabilityai/sd-turbo", prompt: "sdk" } }),
    });
    assert.equal(res.status, 201);
    const stream = await res.json();
    await context.grantPermissions(["camera"], { origin: app.origin });
    const page = await context.newPage();
    await page.goto(`${app.origin}/`);
    assert.notEqual(app.origin, engine.base, "the page is on another origin than the engine");
    const played = await broadcastAndPlay(page, `${app.origin}/sdk.js`, stream.whip_url, attach);
    await page.close();
    assert.equal(played.whepUrl, `${engine.base}/live/video-to-video/${stream.id}/whep`);
    assert.equal(played.width, 512, JSON.stringify(played));
    assert.equal(played.broadcast, "live", JSON.stringify(played));
    return played;
  } finally {
    await app.close();
  }
}

/**
 * Creates a stream through `dreamgate serve` from a page of the gateway's own origin (the SDK and
 * the page answered by the browser's router; every /api/ request goes to the real gateway, with
 * its cookie), then broadcasts and plays it with the SDK through the gateway's routes.
 * @param {import("playwright-core").BrowserContext} context
 * @param {{ base: string }} serve
 * @param {"documented" | "on-playing"} attach
 */
async function playThroughTheGateway(context, serve, attach) {
  const sdk = await readFile(SDK_JS);
  await context.route(`${serve.base}/sdk-e2e/**`, (route) => {
    const url = new URL(route.request().url());
    if (url.pathname.endsWith("/sdk.js")) route.fulfill({ contentType: "text/javascript", body: sdk });
    else route.fulfill({ contentType: "text/html", body: PAGE });
  });
  await context.grantPermissions(["camera"], { origin: serve.base });
  const page = await context.newPage();
  try {
    await page.goto(`${serve.base}/sdk-e2e/`);
    const id = await page.evaluate(async () => {
      const res = await fetch("/api/daydream/streams", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pipeline: "streamdiffusion", params: { model_id: "stabilityai/sd-turbo", prompt: "sdk" } }),
      });
      if (res.status !== 201) throw new Error(`create: ${res.status} ${await res.text()}`);
      return (await res.json()).id;
    });
    const whipUrl = `${serve.base}/api/daydream/streams/${id}/whip`;
    const played = await broadcastAndPlay(page, `${serve.base}/sdk-e2e/sdk.js`, whipUrl, attach);
    assert.equal(played.whepUrl, `${serve.base}/api/daydream/streams/${id}/whep`, "absolute, the gateway's own");
    assert.equal(played.width, 512, JSON.stringify(played));
    assert.equal(played.broadcast, "live", JSON.stringify(played));
    return played;
  } finally {
    await page.close();
    await context.unroute(`${serve.base}/sdk-e2e/**`);
  }
}

describe("the official browser SDK", () => {
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test("from a page on another origin, it publishes to the engine and plays its output (404 until output: the player retries)", { timeout: 120000 }, async () => {
    const engine = await startEngine({ key: KEY });
    try {
      const played = await playFromAnotherOrigin(browser.context, engine, "on-playing");
      assert.ok(played.states.includes("playing"), JSON.stringify(played.states));
    } finally {
      await engine.stop();
    }
  });

  test("the README's player snippet plays as written when the engine holds WHEP until the first output (Livepeer's behaviour)", { timeout: 120000 }, async () => {
    const engine = await startEngine({ key: KEY, faults: "whep_hold=10s" });
    try {
      const played = await playFromAnotherOrigin(browser.context, engine, "documented");
      assert.equal(played.states[0], "playing", `the first WHEP POST was answered, no retry: ${JSON.stringify(played.states)}`);
    } finally {
      await engine.stop();
    }
  });

  test("through dreamgate serve, from the gateway's own page: broadcast and player both work", { timeout: 120000 }, async () => {
    const serve = await startServe();
    try {
      await playThroughTheGateway(browser.context, serve, "on-playing");
    } finally {
      await serve.stop();
    }
  });

  test("through dreamgate serve --whep-hold, the README's player snippet plays as written", { timeout: 120000 }, async () => {
    const serve = await startServe({ args: ["--whep-hold", "8"] });
    try {
      const played = await playThroughTheGateway(browser.context, serve, "documented");
      assert.equal(played.states[0], "playing", `the first WHEP POST was answered, no retry: ${JSON.stringify(played.states)}`);
    } finally {
      await serve.stop();
    }
  });
});
