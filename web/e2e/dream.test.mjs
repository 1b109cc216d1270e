// The Dream page end to end: Chromium (fake camera) -> dreamgate serve (gateway + embedded
// engine) -> WHIP ingest -> per-frame transform -> WHEP output -> the page's <video>.
// Everything runs on 127.0.0.1.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

import { DEFAULT_BASE_PROMPT, buildPrompt, createPayload } from "../static/lib/params.js";

import {
  LIVE_UPDATES_UNAVAILABLE,
  clickDreamAndTimeFirstFrame,
  createdStreamId,
  eventually,
  histogramDistance,
  colourDistance,
  outputCornerColour,
  lumaStdDev,
  meanAbsDiff,
  openDreamPage,
  outputHistogram,
  pageStatus,
  sampleCamera,
  sampleOutput,
  screenshot,
  waitForStatus,
  DREAMGATE_BIN,
} from "./harness.mjs";

const LIVE = "Dream is live";
const FEMALE_PROMPT = "female cartoon magical dj blue sparkle";

/** `inference_status.last_params.prompt` of a status body. */
const lastPrompt = (body) => body?.data?.inference_status?.last_params?.prompt;

describe("defaults", () => {
  test("the page's create payload equals `dreamgate params defaults` (one set of defaults)", () => {
    const rust = JSON.parse(execFileSync(DREAMGATE_BIN, ["params", "defaults"], { encoding: "utf8" }));
    assert.deepEqual(createPayload(buildPrompt("androgynous", DEFAULT_BASE_PROMPT)), rust);
  });
});

describe("Dream on the embedded engine", () => {
  test("local mode is announced; Dream plays transformed output; persona change reaches the engine; Stop cleans up", async (t) => {
    const { serve, page, responses, requests, logs } = await openDreamPage(t, { grantCamera: true });
    t.diagnostic(`page: ${serve.base}/`);

    // Idle page.
    await page.waitForFunction(() => !document.getElementById("mode-note")?.hidden, null, { timeout: 10000 });
    assert.match(await page.locator("#mode-note").innerText(), /embedded Dreamgate engine/);
    assert.equal(await page.locator("#dream-toggle").innerText(), "Dream");
    assert.equal(await page.inputValue("#prompt"), "cartoon magical dj blue sparkle");
    // 1:1 output container: 38vh on desktop (900 px viewport -> 342 px), 23vh when small.
    const box = await page.locator("#output").boundingBox();
    assert.ok(box && Math.abs(box.width - 342) <= 1 && Math.abs(box.height - 342) <= 1, `38vh square (${JSON.stringify(box)})`);
    await page.click("#size-toggle");
    const small = await page.locator("#output").boundingBox();
    assert.ok(small && Math.abs(small.width - 207) <= 1 && Math.abs(small.height - 207) <= 1, `23vh square (${JSON.stringify(small)})`);
    await page.click("#size-toggle");
    t.diagnostic(`screenshot: ${await screenshot(page, "dream-idle.png")}`);

    // Dream on: time from the click to the first decoded output frame.
    const idPromise = createdStreamId(page);
    const firstFrameMs = await clickDreamAndTimeFirstFrame(page);
    const id = await idPromise;
    t.diagnostic(`Dream -> first output frame: ${Math.round(firstFrameMs)} ms`);
    await waitForStatus(page, LIVE, 30000);
    assert.equal(await page.locator("#dream-toggle").innerText(), "Stop");
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).__e2e.streams.length), 1, "permission granted: one getUserMedia, no probe");
    assert.equal(await page.locator("#countdown").isHidden(), true, "the countdown ended with the first frame");

    // The create body is the default payload with persona + base prompt.
    const create = requests.find((r) => r.method === "POST" && r.path === "/api/daydream/streams");
    const createBody = JSON.parse(create?.body ?? "{}");
    assert.equal(createBody.pipeline, "streamdiffusion");
    assert.equal(createBody.params.prompt, "androgynous cartoon magical dj blue sparkle");

    // Another session (no cookie) may not see this stream: 403, the spec's message word for word.
    const stranger = await fetch(`${serve.base}/api/daydream/streams/${id}/status`, { cache: "no-store" });
    assert.equal(stranger.status, 403, "another session's status poll");
    assert.equal((await stranger.json()).error, "Stream not owned by active session");

    // WHIP went through the gateway path and succeeded.
    assert.ok(responses.some((r) => r.method === "POST" && r.path === `/api/daydream/streams/${id}/whip` && r.status === 201), "WHIP POST 201");
    assert.ok(responses.some((r) => r.method === "POST" && r.path === `/api/daydream/streams/${id}/whep` && r.status === 201), "WHEP POST 201");

    // The output plays frames that differ from the camera's.
    const out1 = await sampleOutput(page);
    const cam = await sampleCamera(page);
    await page.waitForTimeout(600);
    const out2 = await sampleOutput(page);
    const camDiff = meanAbsDiff(out1, cam);
    const motion = meanAbsDiff(out1, out2);
    t.diagnostic(`output vs camera: ${camDiff.toFixed(1)}/255 mean abs diff; output over 600 ms: ${motion.toFixed(2)}; output luma std dev ${lumaStdDev(out1).toFixed(1)}, camera ${lumaStdDev(cam).toFixed(1)}`);
    assert.ok(lumaStdDev(out1) > 8, "the output is a picture, not a flat frame");
    assert.ok(lumaStdDev(cam) > 8, "the camera sample is a picture");
    assert.ok(camDiff > 12, `output differs from the camera (${camDiff.toFixed(1)})`);
    assert.ok(motion > 0, "the output is moving (new frames keep arriving)");

    t.diagnostic(`screenshot: ${await screenshot(page, "dream-streaming.png")}`);

    // Persona change -> PATCH -> the engine's last_params shows the new prompt -> output changes.
    const before1 = await outputHistogram(page);
    const before2 = await outputHistogram(page);
    const cornerBefore1 = await outputCornerColour(page);
    const cornerBefore2 = await outputCornerColour(page);
    await page.click('label[for="persona-female"]');
    const patched = await eventually(
      async () => {
        const s = await pageStatus(page, id);
        return lastPrompt(s.body) === FEMALE_PROMPT ? s : null;
      },
      "the engine's last_params to show the female prompt",
      20000,
    );
    assert.equal(patched.status, 200);
    // The page says so once the engine's status shows it, politely, apart from the status line (which stays "live").
    await page.waitForFunction(() => document.getElementById("update-notice")?.textContent === "Prompt applied", null, { timeout: 10000 });
    assert.equal(await page.locator("#status").innerText(), LIVE);
    assert.equal(await page.locator("#update-notice").getAttribute("aria-live"), "polite");
    const patch = requests.find((r) => r.method === "PATCH" && r.path === `/api/daydream/streams/${id}/parameters`);
    assert.deepEqual(JSON.parse(patch?.body ?? "{}"), { pipeline: "streamdiffusion", params: { model_id: "stabilityai/sd-turbo", prompt: FEMALE_PROMPT } });
    await page.waitForTimeout(500);
    const afterH = await outputHistogram(page);
    const cornerAfter = await outputCornerColour(page);
    const noise = histogramDistance(before1, before2);
    const change = histogramDistance(before1, afterH);
    const cornerNoise = colourDistance(cornerBefore1, cornerBefore2);
    const cornerChange = colourDistance(cornerBefore1, cornerAfter);
    const rgb = (c) => c.map((v) => Math.round(v)).join(",");
    t.diagnostic(`output colour histogram distance: before/before ${noise.toFixed(3)}, before/after ${change.toFixed(3)}`);
    t.diagnostic(`background colour: before ${rgb(cornerBefore1)} / ${rgb(cornerBefore2)}, after ${rgb(cornerAfter)}: distance ${cornerNoise.toFixed(1)} -> ${cornerChange.toFixed(1)}`);
    // The static background takes the new style's colour; motion does not move it.
    assert.ok(cornerChange >= 8 && cornerChange > 3 * cornerNoise, `the output changed with the prompt (background ${cornerChange.toFixed(1)} vs noise ${cornerNoise.toFixed(1)})`);
    assert.equal(await page.evaluate(() => localStorage.getItem("dreamgate.persona")), "female", "persona persisted");

    // Stop: camera released, WHIP session and stream deleted.
    await page.click("#dream-toggle");
    await waitForStatus(page, "Dream stopped", 10000);
    assert.equal(await page.locator("#dream-toggle").innerText(), "Dream");
    const tracks = await page.evaluate(() => /** @type {any} */ (window).__e2e.streams.flatMap((s) => s.getTracks().map((tr) => tr.readyState)));
    assert.ok(tracks.length >= 1);
    assert.deepEqual([...new Set(tracks)], ["ended"], "every camera track ended");
    await eventually(
      () => responses.some((r) => r.method === "DELETE" && r.path === `/api/daydream/streams/${id}/whip` && r.status >= 200 && r.status < 300),
      "WHIP DELETE answered 2xx",
      10000,
    );
    await eventually(
      () => responses.some((r) => r.method === "DELETE" && r.path === `/api/daydream/streams/${id}` && r.status >= 200 && r.status < 300),
      "stream DELETE answered 2xx",
      10000,
    );
    await eventually(
      () => responses.some((r) => r.method === "DELETE" && r.path === `/api/daydream/streams/${id}/whep` && r.status >= 200 && r.status < 300),
      "WHEP viewer DELETE answered 2xx",
      10000,
    );
    // The engine's own record of it (its log lines, target dreamgate_engine).
    const engineLog = (what) => new RegExp(`dreamgate_engine[^\\n]*${what}[^\\n]*${id}|dreamgate_engine[^\\n]*${id}[^\\n]*${what}`);
    await eventually(() => engineLog("WHIP session ended by request").test(serve.output), "the engine to end the WHIP session by request", 10000);
    await eventually(() => engineLog("stream deleted").test(serve.output), "the engine to delete the stream", 10000);
    // Its own session learns it has ended (404, the gateway's tombstone), not "not yours" (403).
    const gone = await pageStatus(page, id);
    assert.equal(gone.status, 404, `the owner's status poll after Stop (${JSON.stringify(gone.body)})`);
    assert.deepEqual(gone.body, { error: "Stream not found", message: `Stream ${id} has ended` });
    const videoSrc = await page.evaluate(() => /** @type {HTMLVideoElement} */ (document.getElementById("output-video")).srcObject);
    assert.equal(videoSrc, null, "the player is stopped");

    // Reload: persona persisted, prompt back to the default.
    await page.fill("#prompt", "neon city");
    await page.reload();
    assert.equal(await page.isChecked("#persona-female"), true);
    assert.equal(await page.inputValue("#prompt"), "cartoon magical dj blue sparkle");
    assert.deepEqual(logs.filter((l) => l.startsWith("pageerror")), []);
  });
});

describe("tab close", () => {
  test("pagehide sends the end beacon: the engine deletes the stream", async (t) => {
    const { serve, page, requests } = await openDreamPage(t);
    const idPromise = createdStreamId(page);
    await page.click("#dream-toggle");
    const id = await idPromise;
    await waitForStatus(page, LIVE, 30000);
    await page.close();
    // The gateway's log for an owner ending its stream (DELETE route and beacon share it),
    // then the engine's own record of the deletion.
    const logged = (re) => re.test(serve.output);
    await eventually(
      () => logged(new RegExp(`owner ends the stream[^\\n]*${id}`)) && logged(new RegExp(`dreamgate_engine[^\\n]*stream deleted[^\\n]*${id}`)),
      "the beacon to end and delete the stream",
      15000,
    );
    // It was the beacon: the page never sent the stream DELETE (it only does on Stop).
    assert.equal(requests.filter((r) => r.method === "DELETE" && r.path === `/api/daydream/streams/${id}`).length, 0);
  });
});

describe("engine faults", () => {
  test("PATCH unsupported (patch=405): the spec's message after 5 failures, then no more PATCHes", async (t) => {
    const { serve, page, requests } = await openDreamPage(t, { faults: "patch=405" });
    // The negative check below counts status polls: keep the page on polling (no event stream).
    await page.route("**/api/daydream/streams/*/events", (route) => route.fulfill({ status: 404, body: "" }));
    const idPromise = createdStreamId(page);
    await page.click("#dream-toggle");
    const id = await idPromise;
    await waitForStatus(page, LIVE, 60000);
    await page.click('label[for="persona-male"]');
    await page.waitForFunction((msg) => document.getElementById("notice")?.textContent === msg, LIVE_UPDATES_UNAVAILABLE, { timeout: 30000 });
    assert.equal(await page.locator("#notice").isVisible(), true);
    const patches = () => requests.filter((r) => r.method === "PATCH" && r.path === `/api/daydream/streams/${id}/parameters`).length;
    assert.equal(patches(), 5);
    // Further changes are not sent (until restart); the stream keeps running. A negative
    // check needs an observable "the lifecycle has had its chance": the live status poll
    // (every 5 s, driven by the same TICK as the PATCH retries, whose backoff is at most
    // 4 s). Two more polls after the click = at least one full poll interval of ticks.
    const polls = () => requests.filter((r) => r.method === "GET" && r.path === `/api/daydream/streams/${id}/status`).length;
    const pollsBefore = polls();
    await page.click('label[for="persona-female"]');
    await eventually(() => polls() >= pollsBefore + 2, "two more status polls after the change", 20000);
    assert.equal(patches(), 5);
    assert.equal(await page.locator("#status").innerText(), LIVE);
    assert.equal(await page.locator("#notice").innerText(), LIVE_UPDATES_UNAVAILABLE, "still word for word");
    assert.equal(await page.locator("#update-notice").isVisible(), false, "no 'Updating prompt…' over it");
    await page.click("#dream-toggle");
    await waitForStatus(page, "Dream stopped", 10000);
  });

  test("server dies while live: 'Connection lost — reconnecting…' within seconds (not a green 'live')", async (t) => {
    const { serve, page } = await openDreamPage(t);
    await page.click("#dream-toggle");
    await waitForStatus(page, LIVE, 60000);
    const killed = Date.now();
    await serve.stop();
    await waitForStatus(page, "Connection lost — reconnecting…", 15000);
    t.diagnostic(`server stopped -> "Connection lost" shown after ${Date.now() - killed} ms`);
    assert.notEqual(await page.locator("#status").getAttribute("data-kind"), "live");
    assert.equal(await page.locator("#dream-toggle").innerText(), "Stop", "still trying (the WHIP budget decides the give-up)");
  });

  test("engine warm-up (warmup=5s): WHIP retries, then live", async (t) => {
    const { serve, page, responses } = await openDreamPage(t, { faults: "warmup=5s" });
    const idPromise = createdStreamId(page);
    const started = Date.now();
    await page.click("#dream-toggle");
    const id = await idPromise;
    await waitForStatus(page, LIVE, 60000);
    const whip = responses.filter((r) => r.method === "POST" && r.path === `/api/daydream/streams/${id}/whip`).map((r) => r.status);
    t.diagnostic(`WHIP POST statuses: ${whip.join(", ")}; live after ${Date.now() - started} ms`);
    assert.ok(whip.length >= 2, "retried");
    assert.ok(whip.slice(0, -1).every((s) => [404, 409, 429, 503].includes(s) || s >= 500), `warm-up answers first (${whip})`);
    assert.equal(whip.at(-1), 201);
    assert.equal(await page.locator("#status").getAttribute("data-kind"), "live");
    const out = await sampleOutput(page);
    assert.ok(lumaStdDev(out) > 8, "output frames are playing");
    await page.click("#dream-toggle");
    await waitForStatus(page, "Dream stopped", 10000);
  });
});
