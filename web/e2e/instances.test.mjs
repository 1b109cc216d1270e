// Production in Chromium: two `dreamgate serve` instances sharing one Redis (`--store`), behind
// nginx balancing round robin, in front of one `dreamgate engine` (daydream mode, a real key). A
// live Dream survives a rolling restart of both instances (no upstream DELETE, no error on the
// page) and a `kill -9` of one of them (the output keeps playing, status and prompt updates keep
// working); once the browser leaves, no stream remains upstream after the reap window.
// Everything listens on 127.0.0.1 (the suite runs in a network namespace with only loopback);
// `redis-server` and `nginx` come from Debian (scripts/test.sh installs them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";

import { DREAMGATE_BIN, createdStreamId, eventually, freePort, launchBrowser, openPage, ready, startProcess, waitForStatus } from "./harness.mjs";

const LIVE = "Dream is live";
const KEY = "daydream_live_E2E_INSTANCES_0123456789abcdef";
const REAP_AFTER_S = 5;

/** The first of `names` that exists (Debian puts nginx in /usr/sbin, not always on PATH). */
function findBinary(...names) {
  for (const n of names) {
    if (n.includes("/")) {
      if (existsSync(n)) return n;
      continue;
    }
    for (const dir of (process.env.PATH ?? "").split(":")) if (dir && existsSync(path.join(dir, n))) return path.join(dir, n);
  }
  return null;
}
const REDIS = findBinary("redis-server", "/usr/bin/redis-server");
const NGINX = findBinary("nginx", "/usr/sbin/nginx");

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/** The engine's own view of a stream (with the key), or null once it is gone (404). */
async function upstreamStream(engineBase, id) {
  const res = await fetch(`${engineBase}/v1/streams/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${KEY}` } });
  if (res.status === 404) return null;
  assert.equal(res.status, 200, `engine GET stream: ${res.status}`);
  const body = await res.json();
  return body.data ?? body;
}

/** Decoded output frames over `ms` (requestVideoFrameCallback). */
async function framesDecoded(page, ms) {
  return await page.evaluate(
    (wait) =>
      new Promise((resolve) => {
        const video = /** @type {HTMLVideoElement} */ (document.getElementById("output-video"));
        let n = 0;
        const count = () => {
          n += 1;
          video.requestVideoFrameCallback(count);
        };
        video.requestVideoFrameCallback(count);
        setTimeout(() => resolve(n), wait);
      }),
    ms,
  );
}

/** Every text the status line, the notice and the update line show from now on. */
async function recordLines(page) {
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__e2e.lines = [];
    for (const id of ["status", "notice", "update-notice"]) {
      const el = /** @type {HTMLElement} */ (document.getElementById(id));
      new MutationObserver(() => {
        if (el.textContent && !el.hidden) w.__e2e.lines.push(`${id}: ${el.textContent}`);
      }).observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
    }
  });
  return async () => /** @type {string[]} */ (await page.evaluate(() => /** @type {any} */ (window).__e2e.lines));
}

/** Sends `prompt` from the page's prompt form. */
async function sendPrompt(page, prompt) {
  await page.evaluate((p) => {
    const input = /** @type {HTMLInputElement} */ (document.getElementById("prompt"));
    const form = /** @type {HTMLFormElement} */ (document.getElementById("prompt-form"));
    input.value = p;
    form.requestSubmit();
  }, prompt);
}

const skip = !REDIS ? "needs redis-server (Debian's redis-server; scripts/test.sh installs it)" : !NGINX ? "needs nginx (Debian's nginx; scripts/test.sh installs it)" : false;

test("two instances on one Redis behind nginx: a rolling restart and a kill -9 keep the Dream; nothing is left upstream", { skip, timeout: 240000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dreamgate-e2e-instances-"));
  await chmod(dir, 0o755);
  /** @type {ReturnType<typeof startProcess>[]} */
  const procs = [];
  t.after(async () => {
    // nginx's master ends its workers on SIGTERM (SIGKILL would orphan them)
    for (const p of procs.reverse()) await p.stop(p.name === "nginx" ? "SIGTERM" : "SIGKILL", 5000);
    await rm(dir, { recursive: true, force: true });
  });
  const spawnKept = (/** @type {Parameters<typeof startProcess>} */ ...a) => {
    const p = startProcess(...a);
    procs.push(p);
    return p;
  };

  // Redis, the engine, two gateways, nginx.
  const redisPort = await freePort();
  const redis = spawnKept("redis-server", /** @type {string} */ (REDIS), ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir]);
  await ready(redis, () => listening(redisPort), "redis");

  const enginePort = await freePort();
  const engineBase = `http://127.0.0.1:${enginePort}`;
  const engine = spawnKept("dreamgate engine", DREAMGATE_BIN, ["engine", "--listen", `127.0.0.1:${enginePort}`, "--api-key", KEY], { ...process.env, DREAMGATE_LOG: "warn" });
  await ready(engine, async () => (await fetch(`${engineBase}/v1/streams/none`, { headers: { authorization: `Bearer ${KEY}` } })).status === 404, "engine");

  const lbPort = await freePort();
  const lbBase = `http://127.0.0.1:${lbPort}`;
  const gwPorts = [await freePort(), await freePort()];
  const gwEnv = {
    ...process.env,
    DAYDREAM_API_KEY: KEY,
    DAYDREAM_API_GATEWAY: engineBase,
    DAYDREAM_WHIP_ALLOW_DEV: "1",
    DREAMGATE_LOG: "info,str0m=warn",
  };
  delete gwEnv.DAYDREAM_WHIP_ALLOWED_HOSTS;
  const startGateway = async (/** @type {number} */ i) => {
    const port = gwPorts[i];
    const gw = spawnKept(`gateway ${"AB"[i]}`, DREAMGATE_BIN, [
      "serve",
      "--listen", `127.0.0.1:${port}`,
      "--store", `redis://127.0.0.1:${redisPort}/0`,
      "--reap-after", String(REAP_AFTER_S),
      "--public-url", lbBase,
      "--trusted-proxy", "127.0.0.1",
    ], gwEnv);
    await ready(gw, async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, "gateway");
    return gw;
  };
  const gateways = [await startGateway(0), await startGateway(1)];

  await writeFile(
    path.join(dir, "nginx.conf"),
    `worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
daemon off;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  client_body_buffer_size 128k;
  upstream dreamgate {
    server 127.0.0.1:${gwPorts[0]} max_fails=1 fail_timeout=1s;
    server 127.0.0.1:${gwPorts[1]} max_fails=1 fail_timeout=1s;
    keepalive 8;
  }
  server {
    listen 127.0.0.1:${lbPort};
    location / {
      proxy_pass http://dreamgate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_connect_timeout 2s;
      proxy_read_timeout 300s;
    }
  }
}
`,
  );
  const nginx = spawnKept("nginx", /** @type {string} */ (NGINX), ["-e", `${dir}/nginx-error.log`, "-p", dir, "-c", `${dir}/nginx.conf`]);
  await ready(nginx, async () => (await fetch(`${lbBase}/api/daydream/config`)).ok, "nginx");

  // A Dream, live through the load balancer.
  const browser = await launchBrowser();
  t.after(() => browser.close());
  await browser.context.grantPermissions(["camera"], { origin: lbBase });
  const { page, responses, logs } = await openPage(browser.context, lbBase);
  const idPromise = createdStreamId(page);
  await page.click("#dream-toggle");
  const id = await idPromise;
  await waitForStatus(page, LIVE, 60000);
  assert.ok(await upstreamStream(engineBase, id), "the stream exists upstream");
  assert.ok((await framesDecoded(page, 2000)) > 10, "output frames before the restarts");
  const lines = await recordLines(page);

  // Rolling restart: SIGTERM one instance, restart it on the same port, then the other.
  for (const i of [0, 1]) {
    const how = await gateways[i].stop("SIGTERM");
    assert.equal(how.code, 0, `${gateways[i].name} exits cleanly on SIGTERM:\n${gateways[i].output}`);
    assert.ok(await upstreamStream(engineBase, id), `no upstream DELETE when ${gateways[i].name} stops`);
    gateways[i] = await startGateway(i);
    // both instances serve the page's polls and events before the next one goes
    await delay(3000);
    assert.ok(await upstreamStream(engineBase, id), `the stream is still upstream after ${gateways[i].name} restarted`);
  }
  assert.equal(await page.locator("#status").textContent(), LIVE, `still live after the rolling restart; lines: ${JSON.stringify(await lines())}`);
  assert.ok((await framesDecoded(page, 2000)) > 10, "output frames after the rolling restart");
  const shown = await lines();
  t.diagnostic(`lines during the rolling restart: ${JSON.stringify(shown.filter((l, i) => l !== shown[i - 1]))}`);
  assert.deepEqual(shown.filter((l) => !l.endsWith(`: ${LIVE}`)), [], "the page shows nothing but live during the rolling restart");
  assert.equal(await page.locator("#notice").isHidden(), true, "no error notice");

  // A prompt update goes through whichever instance nginx picks.
  await sendPrompt(page, "rolled");
  await eventually(async () => (await upstreamStream(engineBase, id))?.params?.prompt?.endsWith("rolled"), "the prompt reaching the engine after the restart", 20000);

  // kill -9 of one instance: the other carries on with the same cookie.
  const killed = await gateways[0].stop("SIGKILL");
  assert.equal(killed.signal, "SIGKILL");
  const before = responses.length;
  await delay(4000);
  assert.equal(await page.locator("#status").textContent(), LIVE, `still live after kill -9; lines: ${JSON.stringify(await lines())}`);
  assert.ok((await framesDecoded(page, 2000)) > 10, "output frames after kill -9");
  await sendPrompt(page, "survivor");
  await eventually(async () => (await upstreamStream(engineBase, id))?.params?.prompt?.endsWith("survivor"), "the prompt reaching the engine after kill -9", 20000);
  const after = responses.slice(before).filter((r) => r.path.startsWith(`/api/daydream/streams/${id}`));
  assert.ok(after.length > 0, "the page kept talking to the gateway");
  assert.deepEqual(after.filter((r) => r.status >= 400), [], "no stream call failed after kill -9");
  assert.equal(await page.locator("#notice").isHidden(), true, "no error notice");

  // Every browser leaves: nothing remains upstream once the reap window has passed.
  await page.close();
  await eventually(async () => (await upstreamStream(engineBase, id)) === null, "the stream deleted upstream", (REAP_AFTER_S + 20) * 1000, 500);
  t.diagnostic(`page logs: ${logs.slice(-5).join(" | ")}`);
});
