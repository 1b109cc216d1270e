// Live truth in Chromium against `dreamgate serve` on the embedded engine: the stats panel,
// Snapshot and Record, latest-wins prompt updates, status polling when the event stream is
// missing, pushed phases (the gateway's event stream), the stall knob and the ICE-disconnect knob.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";

import { REPO_ROOT, createdStreamId, eventually, openDreamPage, pageStatus, screenshot, waitForStatus } from "./harness.mjs";

const LIVE = "Dream is live";

/**
 * Server features these tests wait for. Flip one to true (or set DREAMGATE_E2E_FEATURES to a
 * comma-separated list, e.g. "events,stall,ice_disconnect") once the servers have it.
 */
const enabled = new Set((process.env.DREAMGATE_E2E_FEATURES ?? "").split(",").map((s) => s.trim()).filter(Boolean));
const FEATURES = {
  /** The gateway's `GET /api/daydream/streams/:id/events` (Server-Sent Events). */
  events: true,
  /** The engine fault knob `stall=3s` (output stops for that long once live). */
  stall: true,
  /** The engine fault knob `ice_disconnect=1` (the engine ends the WHIP session when ICE disconnects). */
  iceDisconnect: true,
};

/** Clicks Dream and waits until live; returns the stream id. */
async function goLive(page) {
  const idPromise = createdStreamId(page);
  await page.click("#dream-toggle");
  const id = await idPromise;
  await waitForStatus(page, LIVE, 60000);
  return id;
}

/** Every text the update line shows, in order (recorded in the page). */
async function recordUpdateLine(page) {
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__e2e.updates = [];
    const el = /** @type {HTMLElement} */ (document.getElementById("update-notice"));
    new MutationObserver((records) => {
      for (const r of records) for (const n of r.addedNodes) if (n.textContent) w.__e2e.updates.push(n.textContent);
    }).observe(el, { childList: true, characterData: true, subtree: true });
  });
  return async () => /** @type {string[]} */ (await page.evaluate(() => /** @type {any} */ (window).__e2e.updates));
}

/** Width and height in a PNG's IHDR. @param {Buffer} png */
function pngSize(png) {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  assert.equal(png.toString("latin1", 12, 16), "IHDR");
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/**
 * Reads a WebM's EBML header and its video track's PixelWidth / PixelHeight (Segment >
 * Tracks > TrackEntry > Video); sizes of unknown length (MediaRecorder's Segment) run to the end.
 * @param {Buffer} buf
 */
function webmInfo(buf) {
  const vint = (at, keepMarker) => {
    const first = buf[at];
    let len = 1;
    while (len <= 8 && !(first & (0x80 >> (len - 1)))) len++;
    let value = keepMarker ? first : first & (0xff >> len);
    for (let i = 1; i < len; i++) value = value * 256 + buf[at + i];
    const unknown = !keepMarker && value === 2 ** (7 * len) - 1;
    return { value, len, unknown };
  };
  const MASTERS = new Set([0x18538067, 0x1654ae6b, 0xae, 0xe0]);
  const found = { docType: "", width: 0, height: 0 };
  const walk = (from, to) => {
    for (let at = from; at < to; ) {
      const id = vint(at, true);
      const size = vint(at + id.len, false);
      const body = at + id.len + size.len;
      const end = size.unknown ? to : Math.min(to, body + size.value);
      if (id.value === 0x1a45dfa3) walk(body, end);
      else if (id.value === 0x4282) found.docType = buf.toString("latin1", body, end);
      else if (MASTERS.has(id.value)) walk(body, end);
      else if (id.value === 0xb0) found.width = buf.readUIntBE(body, end - body);
      else if (id.value === 0xba) found.height = buf.readUIntBE(body, end - body);
      else if (id.value === 0x1f43b675) return; // Cluster: media data, the tracks came before.
      at = end;
    }
  };
  assert.deepEqual([...buf.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], "EBML header");
  walk(0, buf.length);
  return found;
}

describe("live truth", () => {
  test("the stats panel opens over the output (keyboard too) and shows non-zero fps and bitrate", async (t) => {
    const { page } = await openDreamPage(t, { grantCamera: true });
    await goLive(page);
    await page.focus("#stats-toggle");
    await page.keyboard.press("Enter");
    assert.equal(await page.locator("#stats-toggle").getAttribute("aria-expanded"), "true");
    const figures = await eventually(
      async () => {
        const rows = await page.$$eval("#stats-list dt", (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent ?? ""])));
        const num = (label) => parseFloat(rows[label] ?? "");
        return num("Input sent") > 0 && num("Output received") > 0 && num("Upload") > 0 && num("Download") > 0 ? rows : null;
      },
      "non-zero fps and bitrate in the stats panel",
      20000,
    );
    t.diagnostic(`stats: ${JSON.stringify(figures)}; ${await page.locator("#stats-verdict").innerText()}`);
    assert.match(await page.locator("#stats-verdict").innerText(), /^(Good|Fair|Poor): \S/);
    const file = await screenshot(page, "stats-panel.png");
    t.diagnostic(`screenshot: ${file}`);
    if (process.env.DREAMGATE_E2E_DOCS === "1") {
      await mkdir(path.join(REPO_ROOT, "docs"), { recursive: true });
      await copyFile(file, path.join(REPO_ROOT, "docs", "stats-panel.png"));
    }
    await page.keyboard.press("Enter");
    assert.equal(await page.locator("#stats-panel").isHidden(), true, "closed again from the keyboard");
  });

  test("Snapshot saves a PNG and Record a WebM of the stream's size; nothing is uploaded", async (t) => {
    const { page, requests } = await openDreamPage(t, { grantCamera: true });
    await goLive(page);
    const size = await page.evaluate(() => {
      const v = /** @type {HTMLVideoElement} */ (document.getElementById("output-video"));
      return { width: v.videoWidth, height: v.videoHeight };
    });
    t.diagnostic(`output video: ${size.width}x${size.height}`);
    const apiCalls = requests.length;

    const [shot] = await Promise.all([page.waitForEvent("download"), page.click("#snapshot")]);
    assert.match(shot.suggestedFilename(), /^dream-.*\.png$/);
    const png = await readFile(/** @type {string} */ (await shot.path()));
    assert.deepEqual(pngSize(png), size, "the PNG has the output's size");

    await page.click("#record");
    assert.equal(await page.locator("#record").innerText(), "Stop recording");
    await page.waitForFunction(() => /REC 0:0[2-9] \/ 1:00/.test(document.getElementById("record-timer")?.textContent ?? ""), null, { timeout: 15000 });
    const [rec] = await Promise.all([page.waitForEvent("download"), page.click("#record")]);
    assert.match(rec.suggestedFilename(), /^dream-.*\.webm$/);
    const webm = await readFile(/** @type {string} */ (await rec.path()));
    const info = webmInfo(webm);
    t.diagnostic(`WebM: ${webm.length} bytes, ${JSON.stringify(info)}`);
    assert.equal(info.docType, "webm");
    assert.deepEqual({ width: info.width, height: info.height }, size, "the WebM's video track has the output's size");
    assert.equal(await page.locator("#record-timer").isHidden(), true);
    assert.deepEqual(requests.slice(apiCalls).filter((r) => r.method === "POST" || r.method === "PUT").map((r) => r.path), [], "nothing uploaded");
  });

  test("a burst of prompt edits sends one PATCH with the last prompt; 'Prompt applied' once the engine shows it", async (t) => {
    const { page, requests } = await openDreamPage(t, { grantCamera: true });
    const id = await goLive(page);
    const updates = await recordUpdateLine(page);
    const before = await pageStatus(page, id);
    // Ten edits in one go: the debounce timer cannot fire in between.
    await page.evaluate(() => {
      const input = /** @type {HTMLInputElement} */ (document.getElementById("prompt"));
      const form = /** @type {HTMLFormElement} */ (document.getElementById("prompt-form"));
      for (let i = 0; i < 10; i++) {
        input.value = `neon burst ${i}`;
        form.requestSubmit();
      }
    });
    await page.waitForFunction(() => document.getElementById("update-notice")?.textContent === "Prompt applied", null, { timeout: 20000 });
    const patches = requests.filter((r) => r.method === "PATCH" && r.path === `/api/daydream/streams/${id}/parameters`);
    assert.equal(patches.length, 1, "one PATCH for the burst");
    assert.equal(JSON.parse(patches[0].body ?? "{}").params.prompt, "androgynous neon burst 9");
    const after = await pageStatus(page, id);
    const inf = after.body?.data?.inference_status;
    assert.equal(inf?.last_params?.prompt, "androgynous neon burst 9");
    assert.notEqual(inf?.last_params_hash, before.body?.data?.inference_status?.last_params_hash, "the engine's hash moved");
    const seen = await updates();
    t.diagnostic(`update line: ${JSON.stringify(seen)}`);
    assert.deepEqual(seen.filter((x, i) => x !== seen[i - 1]), ["Updating prompt…", "Sent — waiting for the stream", "Prompt applied"]);
  });

  test("without the event stream (the route answers 404) the page polls the status and goes live", async (t) => {
    const { page, responses } = await openDreamPage(t, { grantCamera: true });
    await page.route("**/api/daydream/streams/*/events", (route) => route.fulfill({ status: 404, contentType: "application/json", body: '{"error":"Not found"}' }));
    const id = await goLive(page);
    const polls = () => responses.filter((r) => r.method === "GET" && r.path === `/api/daydream/streams/${id}/status`).length;
    await eventually(() => polls() >= 2, "status polls", 20000);
    assert.equal(await page.locator("#status").getAttribute("data-kind"), "live");
  });

  test("a stand-in event stream (text/event-stream from a route) is used instead of polling", async (t) => {
    const { page, browser, serve, responses } = await openDreamPage(t, { grantCamera: true });
    let served = 0;
    await page.route("**/api/daydream/streams/*/events", async (route) => {
      served++;
      // The real status through the page's session, pushed as the gateway will push it; `retry`
      // keeps the browser from reconnecting during the test.
      const statusUrl = route.request().url().replace(/\/events$/, "/status");
      const status = await (await browser.context.request.get(statusUrl)).json();
      const data = JSON.stringify({ phase: "warming", reason: "loading the pipeline", status });
      await route.fulfill({ status: 200, headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-store" }, body: `retry: 600000\nevent: status\ndata: ${data}\n\n` });
    });
    const id = await goLive(page);
    assert.equal(served, 1, "one event stream");
    t.diagnostic(`page: ${serve.base}/`);
    // The pushed phase reached the page: the stats verdict names it.
    await page.click("#stats-toggle");
    await page.waitForFunction(() => document.getElementById("stats-verdict")?.textContent === "Poor: the stream is restarting its pipeline", null, { timeout: 10000 });
    assert.equal(responses.filter((r) => r.method === "GET" && r.path === `/api/daydream/streams/${id}/status`).length, 0, "no status polls while the event stream is open");
  });

  test("pushed phases drive the page: no status polling while the event stream is open", { skip: FEATURES.events ? false : "needs the gateway's GET /api/daydream/streams/:id/events (Server-Sent Events)" }, async (t) => {
    const { page, responses } = await openDreamPage(t, { grantCamera: true });
    const id = await goLive(page);
    assert.ok(responses.some((r) => r.method === "GET" && r.path === `/api/daydream/streams/${id}/events` && r.status === 200), "the event stream opened");
    // A change confirmed by the status: it can only have come through the events.
    await page.click('label[for="persona-male"]');
    await page.waitForFunction(() => document.getElementById("update-notice")?.textContent === "Prompt applied", null, { timeout: 20000 });
    assert.equal(responses.filter((r) => r.method === "GET" && r.path === `/api/daydream/streams/${id}/status`).length, 0, "no status polls");
    // Stop: the stream ends; the page says it stopped (its own Stop, not the pushed end).
    await page.click("#dream-toggle");
    await waitForStatus(page, "Dream stopped", 10000);
  });

  test("the stall knob (stall=3s): the page says so, recovers by itself and is live again", { skip: FEATURES.stall ? false : "needs the engine fault knob stall=3s (`dreamgate serve --engine-faults stall=3s`)" }, async (t) => {
    const { page, responses } = await openDreamPage(t, { grantCamera: true, faults: "stall=3s" });
    const id = await goLive(page);
    await waitForStatus(page, "Output stalled — reconnecting…", 30000);
    await waitForStatus(page, LIVE, 40000);
    const wheps = responses.filter((r) => r.method === "POST" && r.path === `/api/daydream/streams/${id}/whep` && r.status === 201).length;
    t.diagnostic(`WHEP subscriptions: ${wheps}`);
    assert.ok(wheps >= 2, "re-subscribed");
  });

  test("the ICE-disconnect knob (ice_disconnect=1): 'Connection lost — reconnecting…', a new WHIP POST, live again", { skip: FEATURES.iceDisconnect ? false : "needs the engine fault knob ice_disconnect=1 (`dreamgate serve --engine-faults ice_disconnect=1`: the engine ends the WHIP session when ICE disconnects)" }, async (t) => {
    const { page, responses } = await openDreamPage(t, { grantCamera: true, faults: "ice_disconnect=1" });
    const id = await goLive(page);
    await waitForStatus(page, "Connection lost — reconnecting…", 60000);
    await waitForStatus(page, LIVE, 60000);
    const whips = responses.filter((r) => r.method === "POST" && r.path === `/api/daydream/streams/${id}/whip` && r.status === 201).length;
    assert.ok(whips >= 2, `a new WHIP POST (${whips})`);
  });
});
