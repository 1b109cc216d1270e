// Daydream's official browser SDK (`@daydreamlive/browser`, pinned in package.json; its ESM
// build served as is from node_modules) in Chromium: `createBroadcast` publishes the fake camera
// and `createPlayer` plays the output, (1) straight against `dreamgate engine` from a page on
// ANOTHER origin (a tiny static server on another 127.0.0.1 port: the engine's WHIP/WHEP CORS),
// and (2) through `dreamgate serve`, from a page of the gateway's own origin (the SDK sends no
// cookie cross-origin), with the gateway's absolute `Livepeer-Playback-URL`.
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
 * @param {import("playwright-core").Page} page
 * @param {string} sdkUrl
 * @param {string} whipUrl
 */
async function broadcastAndPlay(page, sdkUrl, whipUrl) {
  return await page.evaluate(
    async ({ sdkUrl, whipUrl }) => {
      const { createBroadcast, createPlayer } = await import(sdkUrl);
      console.log("sdk imported");
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 512, height: 512 }, audio: false });
      const broadcast = createBroadcast({ whipUrl, stream });
      console.log("camera ok");
      await broadcast.connect();
      console.log(`broadcast connected ${broadcast.whepUrl}`);
      const whepUrl = broadcast.whepUrl;
      const player = createPlayer(whepUrl);
      await player.connect();
      console.log("player connected");
      const video = /** @type {HTMLVideoElement} */ (document.getElementById("out"));
      player.attachTo(video);
      void video.play().catch(() => {});
      const started = Date.now();
      let t0 = -1;
      for (;;) {
        const frames = video.getVideoPlaybackQuality().totalVideoFrames;
        if (t0 < 0 && frames > 0) t0 = video.currentTime;
        if (frames > 20 && t0 >= 0 && video.currentTime > t0 + 1) {
          return { whepUrl, frames, currentTime: video.currentTime, width: video.videoWidth };
        }
        if (Date.now() - started > 60000) {
          throw new Error(`no playback: frames ${frames}, currentTime ${video.currentTime}, state ${player.state}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    { sdkUrl, whipUrl },
  );
}

// NOT PASSING YET (issue 9): the broadcast connects (WHIP through CORS, the absolute
// Livepeer-Playback-URL read) and the player connects ("playing"), but the <video> decodes no
// frame within 60 s (frames 0, currentTime 0), both against the engine and through the gateway.
// To diagnose: what the engine's egress sends to the SDK's recvonly video+audio offer.
const SKIP = "the SDK player connects but decodes no frame yet (see the comment above)";

describe("the official browser SDK", { skip: SKIP }, () => {
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test("from a page on another origin, it publishes to the engine and plays its output", { timeout: 120000 }, async () => {
    const engine = await startEngine({ key: KEY });
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
    const origin = `http://127.0.0.1:${port}`;
    try {
      const res = await fetch(`${engine.base}/v1/streams`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ pipeline: "streamdiffusion", params: { model_id: "stabilityai/sd-turbo", prompt: "sdk" } }),
      });
      assert.equal(res.status, 201);
      const stream = await res.json();
      await browser.context.grantPermissions(["camera"], { origin });
      const page = await browser.context.newPage();
      await page.goto(`${origin}/`);
      page.on("console", (m) => console.error(`page: ${m.text()}`));
      const played = await broadcastAndPlay(page, `${origin}/sdk.js`, stream.whip_url);
      assert.equal(played.whepUrl, `${engine.base}/live/video-to-video/${stream.id}/whep`);
      assert.ok(played.width > 0, JSON.stringify(played));
      await page.close();
    } finally {
      app.closeAllConnections();
      await new Promise((r) => app.close(() => r(undefined)));
      await engine.stop();
    }
  });

  test("through dreamgate serve, from the gateway's own page: broadcast and player both work", { timeout: 120000 }, async () => {
    const serve = await startServe();
    const sdk = await readFile(SDK_JS);
    try {
      // a test page and the SDK at the gateway's origin (answered by the browser's router;
      // every /api/ request goes to the real gateway, with its cookie)
      await browser.context.route(`${serve.base}/sdk-e2e/**`, (route) => {
        const url = new URL(route.request().url());
        if (url.pathname.endsWith("/sdk.js")) route.fulfill({ contentType: "text/javascript", body: sdk });
        else route.fulfill({ contentType: "text/html", body: PAGE });
      });
      await browser.context.grantPermissions(["camera"], { origin: serve.base });
      const page = await browser.context.newPage();
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
      const played = await broadcastAndPlay(page, `${serve.base}/sdk-e2e/sdk.js`, whipUrl);
      assert.equal(played.whepUrl, `${serve.base}/api/daydream/streams/${id}/whep`, "absolute, the gateway's own");
      await page.close();
    } finally {
      await serve.stop();
    }
  });
});
