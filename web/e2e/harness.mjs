// End-to-end harness: a real `dreamgate serve` on the embedded engine (127.0.0.1 only) and
// Debian's Chromium driven by playwright-core (never downloads a browser).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The web/ directory. */
export const WEB_DIR = path.resolve(here, "..");
/** Repository root. */
export const REPO_ROOT = path.resolve(WEB_DIR, "..");
/** Where screenshots go (gitignored). */
export const SCREENSHOT_DIR = path.join(REPO_ROOT, "artifacts", "screenshots");
/** The dreamgate binary. */
export const DREAMGATE_BIN = path.resolve(WEB_DIR, process.env.DREAMGATE_BIN ?? "../target/debug/dreamgate");
/** Debian's Chromium. */
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--allow-loopback-in-peer-connection",
];

/** The spec's message, word for word. */
export const LIVE_UPDATES_UNAVAILABLE = "Live updates unavailable — changes will apply on restart";

/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A child process whose output is kept (stdout and stderr together, for error messages).
 * @param {string} name what to call it in errors
 * @param {string} cmd
 * @param {string[]} args
 * @param {NodeJS.ProcessEnv} [env]
 */
export function startProcess(name, cmd, args, env = process.env) {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  /** @type {{ code: number | null, signal: string | null } | null} */
  let exited = null;
  const exit = new Promise((resolve) => child.on("exit", (code, signal) => resolve((exited = { code, signal }))));
  return {
    name,
    get output() {
      return output;
    },
    get exited() {
      return exited;
    },
    /** Sends `signal` and waits (at most `ms`, then SIGKILL) for the exit. */
    async stop(signal = "SIGTERM", ms = 30000) {
      if (exited) return exited;
      child.kill(/** @type {NodeJS.Signals} */ (signal));
      const timer = setTimeout(() => child.kill("SIGKILL"), ms);
      const how = await exit;
      clearTimeout(timer);
      return how;
    },
  };
}

/**
 * Waits until `check()` is true while the process lives (30 s at most; then it is killed).
 * @param {ReturnType<typeof startProcess>} proc
 * @param {() => Promise<boolean> | boolean} check a throw counts as "not yet"
 * @param {string} what
 */
export async function ready(proc, check, what) {
  const end = Date.now() + 30000;
  for (;;) {
    if (proc.exited) throw new Error(`${proc.name} exited early (${JSON.stringify(proc.exited)}):\n${proc.output}`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) {
      await proc.stop("SIGKILL");
      throw new Error(`${proc.name}: ${what} not ready within 30 s:\n${proc.output}`);
    }
    await delay(100);
  }
}

/**
 * The dreamgate binary with `args` on a free 127.0.0.1 port, once `check(base)` says it is up.
 * @param {string} name
 * @param {(port: number) => string[]} args
 * @param {(base: string) => Promise<boolean>} check
 * @param {string[]} dropEnv environment variables it must not inherit
 */
async function startDreamgate(name, args, check, dropEnv) {
  if (!existsSync(DREAMGATE_BIN)) {
    throw new Error(`dreamgate binary not found at ${DREAMGATE_BIN} (build it with \`cargo build -p dreamgate\` or set DREAMGATE_BIN)`);
  }
  const port = await freePort();
  const env = { ...process.env, DREAMGATE_LOG: process.env.DREAMGATE_LOG ?? "info,str0m=warn" };
  for (const k of dropEnv) delete env[k];
  const proc = startProcess(name, DREAMGATE_BIN, args(port), env);
  const base = `http://127.0.0.1:${port}`;
  await ready(proc, () => check(base), "its HTTP");
  return {
    base,
    port,
    get output() {
      return proc.output;
    },
    async stop() {
      await proc.stop("SIGTERM", 5000);
    },
  };
}

/**
 * Starts `dreamgate serve` in local mode (no DAYDREAM_API_KEY) on 127.0.0.1.
 * @param {{ faults?: string, args?: string[] }} [opts] `faults`: the embedded engine's; `args`: more options
 */
export async function startServe(opts = {}) {
  const args = (/** @type {number} */ port) => {
    const a = ["serve", "--listen", `127.0.0.1:${port}`];
    if (opts.faults) a.push("--engine-faults", opts.faults);
    a.push(...(opts.args ?? []));
    return a;
  };
  const up = async (/** @type {string} */ base) => (await fetch(`${base}/api/daydream/config`)).ok;
  return await startDreamgate("dreamgate serve", args, up, ["DAYDREAM_API_KEY", "DAYDREAM_API_GATEWAY"]);
}

/**
 * Starts `dreamgate engine` alone on 127.0.0.1 with `key` as its API key.
 * @param {{ key: string, faults?: string }} opts
 */
export async function startEngine(opts) {
  const args = (/** @type {number} */ port) => {
    const a = ["engine", "--listen", `127.0.0.1:${port}`, "--api-key", opts.key];
    if (opts.faults) a.push("--faults", opts.faults);
    return a;
  };
  // any answer (401) means it listens
  const up = async (/** @type {string} */ base) => (await fetch(`${base}/v1/streams/str_probe`), true);
  return await startDreamgate("dreamgate engine", args, up, ["DAYDREAM_API_KEY"]);
}

/** Records every getUserMedia stream and offers pixel sampling helpers (runs before the page's scripts). */
function initScript() {
  const w = /** @type {any} */ (window);
  w.__e2e = { streams: [] };
  const md = navigator.mediaDevices;
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    w.__e2e.streams.push(stream);
    return stream;
  };
  /**
   * Downscaled RGBA pixels of a video element; `mirror` + cover crop like the page's capture.
   * @param {HTMLVideoElement} video
   * @param {{ size?: number, mirror?: boolean }} [o]
   */
  w.__e2e.sample = (video, o = {}) => {
    const size = o.size ?? 48;
    const c = document.createElement("canvas");
    c.width = size;
    c.height = size;
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d", { willReadFrequently: true }));
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    const side = Math.min(vw, vh);
    if (o.mirror) {
      ctx.translate(size, 0);
      ctx.scale(-1, 1);
    }
    ctx.drawImage(video, (vw - side) / 2, (vh - side) / 2, side, side, 0, 0, size, size);
    return Array.from(ctx.getImageData(0, 0, size, size).data);
  };
}

/** Launches Chromium with a fresh profile. */
export async function launchBrowser() {
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), "dreamgate-e2e-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
  });
  await context.addInitScript(initScript);
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the page and records the API traffic.
 * @param {import("playwright-core").BrowserContext} context
 * @param {string} base
 */
export async function openPage(context, base) {
  const page = await context.newPage();
  /** @type {{ method: string, path: string, status: number }[]} */
  const responses = [];
  /** @type {{ method: string, path: string, body: string | null }[]} */
  const requests = [];
  const logs = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith("/api/")) requests.push({ method: r.method(), path: u.pathname, body: r.postData() });
  });
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith("/api/")) responses.push({ method: r.request().method(), path: u.pathname, status: r.status() });
  });
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(base + "/");
  return { page, responses, requests, logs };
}

/**
 * Starts `dreamgate serve` (with `opts.faults` for the embedded engine) and Chromium, opens the
 * page, and stops both when the test ends. Started inside the test (not in a hook) so a server
 * that cannot start counts as a failure.
 * @param {import("node:test").TestContext} t
 * @param {{ faults?: string, grantCamera?: boolean }} [opts] `grantCamera`: a returning user
 *   whose camera permission is already granted (the page's pre-check then skips its probe)
 */
export async function openDreamPage(t, opts = {}) {
  const serve = await startServe(opts.faults ? { faults: opts.faults } : {});
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await serve.stop();
  });
  if (opts.grantCamera) await browser.context.grantPermissions(["camera"], { origin: serve.base });
  return { serve, browser, ...(await openPage(browser.context, serve.base)) };
}

/** The created stream's id (from the page's own POST /api/daydream/streams). */
export async function createdStreamId(page) {
  const res = await page.waitForResponse((r) => new URL(r.url()).pathname === "/api/daydream/streams" && r.request().method() === "POST" && r.status() === 201, { timeout: 30000 });
  const body = await res.json();
  return /** @type {string} */ (body.id);
}

/**
 * Clicks Dream and resolves with the ms from the click to the first decoded output frame.
 * @param {import("playwright-core").Page} page
 */
export async function clickDreamAndTimeFirstFrame(page, timeoutMs = 60000) {
  return await page.evaluate(
    (timeout) =>
      new Promise((resolve, reject) => {
        const video = /** @type {HTMLVideoElement} */ (document.getElementById("output-video"));
        const button = /** @type {HTMLButtonElement} */ (document.getElementById("dream-toggle"));
        const timer = setTimeout(() => reject(new Error("no output frame in time")), timeout);
        const arm = () =>
          video.requestVideoFrameCallback(() => {
            if (video.videoWidth > 0) {
              clearTimeout(timer);
              resolve(performance.now() - clickedAt);
            } else arm();
          });
        arm();
        const clickedAt = performance.now();
        button.click();
      }),
    timeoutMs,
  );
}

/** Waits for the status line to read `text`. */
export async function waitForStatus(page, text, timeout = 60000) {
  await page.waitForFunction((t) => document.getElementById("status")?.textContent === t, text, { timeout });
}

/** Output video pixels (48x48 RGBA). */
export async function sampleOutput(page) {
  return await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    return w.__e2e.sample(document.getElementById("output-video"));
  });
}

/** Camera pixels, mirrored and cropped like the published canvas (48x48 RGBA). */
export async function sampleCamera(page) {
  return await page.evaluate(async () => {
    const w = /** @type {any} */ (window);
    const live = w.__e2e.streams.filter((s) => s.getVideoTracks().some((t) => t.readyState === "live"));
    if (live.length === 0) throw new Error("no live camera stream");
    const v = document.createElement("video");
    v.muted = true;
    v.srcObject = live[live.length - 1];
    await v.play();
    await new Promise((r) => v.requestVideoFrameCallback(() => r(undefined)));
    const px = w.__e2e.sample(v, { mirror: true });
    v.pause();
    v.srcObject = null;
    return px;
  });
}

/** Mean absolute difference per channel (RGB, 0-255) of two RGBA samples. */
export function meanAbsDiff(a, b) {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) sum += Math.abs(a[i + c] - b[i + c]);
    n += 3;
  }
  return sum / n;
}

/** Luma standard deviation: a blank or flat frame is near 0. */
export function lumaStdDev(px) {
  const ys = [];
  for (let i = 0; i < px.length; i += 4) ys.push(0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2]);
  const mean = ys.reduce((s, y) => s + y, 0) / ys.length;
  return Math.sqrt(ys.reduce((s, y) => s + (y - mean) ** 2, 0) / ys.length);
}

/** Normalised coarse colour histogram (4 levels per channel). */
export function histogram(px) {
  const h = new Array(64).fill(0);
  let n = 0;
  for (let i = 0; i < px.length; i += 4) {
    h[(px[i] >> 6) * 16 + (px[i + 1] >> 6) * 4 + (px[i + 2] >> 6)]++;
    n++;
  }
  return h.map((x) => x / n);
}

/** L1 distance between two histograms (0 = same colours, 2 = disjoint). */
export function histogramDistance(a, b) {
  return a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0);
}

/**
 * Mean RGB of the bottom corners of a 48x48 sample: background in the fake camera's
 * picture (the moving pacman is in the middle, the clock at the top), so its colour
 * depends on the style, not on motion.
 */
export function cornerColour(px, size = 48, block = 10) {
  const acc = [0, 0, 0];
  let n = 0;
  for (let y = size - block; y < size; y++) {
    for (const x0 of [0, size - block]) {
      for (let x = x0; x < x0 + block; x++) {
        const i = (y * size + x) * 4;
        for (let c = 0; c < 3; c++) acc[c] += px[i + c];
        n++;
      }
    }
  }
  return acc.map((v) => v / n);
}

/** Sum of per-channel absolute differences of two RGB colours. */
export function colourDistance(a, b) {
  return a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0);
}

/** Average corner colour of several output samples. */
export async function outputCornerColour(page, samples = 5, gapMs = 150) {
  const acc = [0, 0, 0];
  for (let i = 0; i < samples; i++) {
    cornerColour(await sampleOutput(page)).forEach((v, c) => (acc[c] += v / samples));
    await page.waitForTimeout(gapMs);
  }
  return acc;
}

/** Average histogram of several output samples. */
export async function outputHistogram(page, samples = 5, gapMs = 150) {
  const acc = new Array(64).fill(0);
  for (let i = 0; i < samples; i++) {
    const h = histogram(await sampleOutput(page));
    h.forEach((x, j) => (acc[j] += x / samples));
    await page.waitForTimeout(gapMs);
  }
  return acc;
}

/** GET the stream status through the page's own session. */
export async function pageStatus(page, id) {
  return await page.evaluate(async (streamId) => {
    const res = await fetch(`/api/daydream/streams/${encodeURIComponent(streamId)}/status`, { cache: "no-store" });
    let body = null;
    try {
      body = await res.json();
    } catch {
      // Not JSON.
    }
    return { status: res.status, body };
  }, id);
}

/** Saves a screenshot under artifacts/screenshots/. */
export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, name);
  await page.screenshot({ path: file });
  return file;
}

/** Polls `fn` until it returns a truthy value (or throws after `timeout`). */
export async function eventually(fn, what, timeout = 30000, every = 250) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await delay(every);
  }
}
