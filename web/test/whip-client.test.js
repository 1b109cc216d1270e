// WHIP client: header parsing, error table, codec order, and the signalling against a real
// HTTP server on 127.0.0.1 (the browser's RTCPeerConnection is replaced by a scripted
// stand-in: node has no WebRTC). Timers run on an injected manual clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";

import { DEFAULT_CONFIG, WHIPClient, WHIPError, WHIP_ERRORS } from "../static/lib/whip-client.js";
import { buildSdpFrag, iceCredentials, parseLinkHeader, preferH264, resolveResourceUrl } from "../static/lib/signalling.js";
import { waitBounded } from "../static/lib/waits.js";

test("error table, word for word", () => {
  assert.equal(WHIP_ERRORS.ALREADY_CONNECTED, "WHIP client already has an active connection");
  assert.equal(WHIP_ERRORS.NO_TRACKS, "MediaStream has no tracks");
  assert.equal(WHIP_ERRORS.TRACK_NOT_LIVE, "Video track is not live");
  assert.equal(WHIP_ERRORS.offerFailed(503), "WHIP offer failed: 503");
  assert.equal(WHIP_ERRORS.offerFailed(404), "WHIP offer failed: 404");
  assert.equal(WHIP_ERRORS.TIMEOUT, "Connection timed out");
  assert.equal(WHIP_ERRORS.ICE_FAILED, "ICE connection failed");
  assert.equal(WHIP_ERRORS.PEER_FAILED, "Peer connection failed");
});

test("class defaults follow the spec (the app overrides trickle and, in local mode, ICE servers)", () => {
  assert.deepEqual(DEFAULT_CONFIG, {
    iceServers: [{ urls: "stun:stun.l.google.com:19302" }],
    iceTransportPolicy: "all",
    connectionTimeout: 45000,
    iceGatheringTimeout: 20000,
    enableTrickleICE: true,
  });
});

test("Link header: ice-server entries with optional credentials; other relations ignored", () => {
  assert.deepEqual(parseLinkHeader('<stun:127.0.0.1:3478>; rel="ice-server"'), [{ urls: "stun:127.0.0.1:3478" }]);
  assert.deepEqual(
    parseLinkHeader(
      '<stun:stun.example.net>; rel="ice-server", <turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="pa,ss"; credential-type="password", <https://example.net/doc>; rel="help"',
    ),
    [{ urls: "stun:stun.example.net" }, { urls: "turn:turn.example.net?transport=udp", username: "user", credential: "pa,ss" }],
  );
  assert.deepEqual(parseLinkHeader("<stun:a:1>; rel=ice-server"), [{ urls: "stun:a:1" }], "unquoted rel");
  assert.deepEqual(parseLinkHeader('<https://x/>; rel="ice-server"'), [], "not an ICE URL");
  assert.deepEqual(parseLinkHeader(""), []);
  assert.deepEqual(parseLinkHeader(null), []);
  assert.deepEqual(parseLinkHeader("garbage"), []);
});

test("Location is resolved against the request URL", () => {
  assert.equal(resolveResourceUrl("/api/daydream/streams/s1/whip", "http://127.0.0.1:3000/api/daydream/streams/s1/whip"), "http://127.0.0.1:3000/api/daydream/streams/s1/whip");
  assert.equal(resolveResourceUrl("abc123", "http://127.0.0.1:9/live/stk/whip"), "http://127.0.0.1:9/live/stk/abc123");
  assert.equal(resolveResourceUrl("https://other/res/1", "http://127.0.0.1:9/whip"), "https://other/res/1");
  assert.equal(resolveResourceUrl(null, "http://127.0.0.1:9/whip"), null);
});

test("H.264 preferred: packetization-mode=1 constrained baseline first, others kept", () => {
  const codecs = [
    { mimeType: "video/VP8" },
    { mimeType: "video/rtx" },
    { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f" },
    { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f" },
    { mimeType: "video/H264", sdpFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" },
    { mimeType: "video/AV1" },
  ];
  const sorted = preferH264(codecs);
  assert.deepEqual(
    sorted.map((c) => `${c.mimeType} ${c.sdpFmtpLine ?? ""}`.trim()),
    [
      "video/H264 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
      "video/H264 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
      "video/H264 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
      "video/VP8",
      "video/rtx",
      "video/AV1",
    ],
  );
  assert.equal(sorted.length, codecs.length);
});

test("trickle sdpfrag", () => {
  const sdp = "v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretpassword\r\n";
  assert.deepEqual(iceCredentials(sdp), { ufrag: "abcd", pwd: "secretpassword" });
  assert.equal(
    buildSdpFrag({ ufrag: "abcd", pwd: "pw", mid: "0", candidates: ["candidate:1 1 udp 1 127.0.0.1 5000 typ host"], end: true }),
    "a=ice-ufrag:abcd\r\na=ice-pwd:pw\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n",
  );
});

// ---------------------------------------------------------------------------------------
// Signalling against a real HTTP server.

/** Manual clock: timers fire only when advanced. */
function manualClock() {
  let now = 0;
  let seq = 0;
  /** @type {Map<number, { at: number, fn: () => void }>} */
  const timers = new Map();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (id) => void timers.delete(id),
    pending: () => [...timers.values()].map((t) => t.at).sort((a, b) => a - b),
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
  };
}

/** Lets pending promise callbacks and socket IO run (no timing assumptions). */
const settle = async (rounds = 20) => {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
};

/** Waits (bounded by rounds of IO, not wall time) until `cond()` holds. */
async function waitFor(cond, what) {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never happened: ${what}`);
}

const OFFER_BASE = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:uf\r\na=ice-pwd:pwpwpwpwpwpwpwpwpwpwpwpw\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:0\r\na=sendonly\r\n";

/** Scripted RTCPeerConnection stand-in. */
class FakePeer extends EventTarget {
  constructor(config) {
    super();
    this.config = { ...config };
    this.configs = [];
    this.transceivers = [];
    this.connectionState = "new";
    this.iceConnectionState = "new";
    this.iceGatheringState = "new";
    this.signalingState = "stable";
    this.localDescription = null;
    this.remoteDescription = null;
    this.closed = false;
    this.candidates = [];
    this.onconnectionstatechange = null;
    this.oniceconnectionstatechange = null;
    this.onicecandidate = null;
    FakePeer.last = this;
  }
  addTransceiver(track, init) {
    const t = {
      track,
      init,
      mid: "0",
      preferences: null,
      setCodecPreferences(codecs) {
        this.preferences = codecs;
      },
    };
    this.transceivers.push(t);
    return t;
  }
  getTransceivers() {
    return this.transceivers;
  }
  async createOffer() {
    return { type: "offer", sdp: OFFER_BASE };
  }
  async setLocalDescription(d) {
    this.localDescription = { ...d };
    this.signalingState = "have-local-offer";
    this.iceGatheringState = "gathering";
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
    this.signalingState = "stable";
  }
  getConfiguration() {
    return { ...this.config };
  }
  setConfiguration(c) {
    this.configs.push(c);
    this.config = { ...c };
  }
  close() {
    this.closed = true;
    this.connectionState = "closed";
  }
  /** Script: a local candidate is gathered. */
  gather(candidate) {
    this.candidates.push(candidate);
    this.localDescription = { ...this.localDescription, sdp: this.localDescription.sdp + `a=${candidate}\r\n` };
    const e = new Event("icecandidate");
    e.candidate = { candidate };
    this.dispatchEvent(e);
    this.onicecandidate?.(e);
  }
  /** Script: gathering finished. */
  complete() {
    this.iceGatheringState = "complete";
    const e = new Event("icecandidate");
    e.candidate = null;
    this.dispatchEvent(e);
    this.onicecandidate?.(e);
    this.dispatchEvent(new Event("icegatheringstatechange"));
  }
  setConnection(state) {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }
  setIce(state) {
    this.iceConnectionState = state;
    this.oniceconnectionstatechange?.();
  }
}

function fakeStream({ tracks = 1, live = true } = {}) {
  const list = Array.from({ length: tracks }, () => ({
    kind: "video",
    readyState: live ? "live" : "ended",
    stop() {
      this.readyState = "ended";
    },
  }));
  return { getTracks: () => list, getVideoTracks: () => list.filter((t) => t.kind === "video"), list };
}

/** A WHIP endpoint: records requests; `respond` decides the POST answer. */
async function whipServer(respond, { held = null } = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (req.method === "POST") return respond(req, res, body);
      if (req.method === "DELETE") {
        requests.at(-1).peerClosedAtDelete = FakePeer.last?.closed;
        if (held) return held.push(res);
        res.writeHead(200);
        return res.end();
      }
      if (req.method === "PATCH") {
        res.writeHead(405);
        return res.end();
      }
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  const base = `http://127.0.0.1:${port}`;
  return { base, requests, close: () => new Promise((r) => server.close(r)) };
}

const answer201 = (req, res) => {
  res.writeHead(201, {
    "Content-Type": "application/sdp",
    Location: "/live/stk_1/whip/sess_1",
    Link: '<stun:127.0.0.1:3478>; rel="ice-server"',
    "Livepeer-Playback-URL": "/live/str_1/whep",
  });
  res.end("v=0\r\nanswer\r\n");
};

function makeClient(base, { options = {}, stream = fakeStream(), fetchLog } = {}) {
  const clock = manualClock();
  const fetches = fetchLog ?? [];
  const client = new WHIPClient(
    { whipUrl: `${base}/live/stk_1/whip`, stream, enableTrickleICE: false, iceServers: [], ...options },
    {
      createPeerConnection: (c) => new FakePeer(c),
      fetch: (url, init) => {
        fetches.push({ url: String(url), method: init?.method });
        return fetch(url, init);
      },
      now: clock.now,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      baseUrl: base,
      senderCapabilities: () => ({
        codecs: [{ mimeType: "video/VP8" }, { mimeType: "video/H264", sdpFmtpLine: "packetization-mode=1;profile-level-id=42e01f" }],
        headerExtensions: [],
      }),
    },
  );
  const states = [];
  client.onConnectionStateChange((s) => states.push(s));
  return { client, clock, fetches, states, stream };
}

test("connect: offer sent once gathering completes; Location, Link and playback URL honoured; DELETE on disconnect", async (t) => {
  const srv = await whipServer(answer201);
  t.after(srv.close);
  const { client, fetches, states, stream } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  const pc = FakePeer.last;
  assert.deepEqual(pc.config, { iceServers: [], iceTransportPolicy: "all" });
  assert.equal(pc.transceivers[0].init.direction, "sendonly");
  assert.equal(pc.transceivers[0].preferences[0].mimeType, "video/H264", "H.264 first");
  assert.equal(fetches.length, 0, "nothing sent while gathering");
  pc.gather("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host");
  pc.complete();
  await connecting;

  assert.equal(client.offerReason, "complete");
  const post = srv.requests.find((r) => r.method === "POST");
  assert.equal(post.url, "/live/stk_1/whip");
  assert.equal(post.headers["content-type"], "application/sdp");
  assert.equal(post.headers.authorization, undefined, "no auth on pre-signed WHIP URLs");
  assert.match(post.body, /a=candidate:1 1 udp 2122260223 127\.0\.0\.1 50000 typ host/, "the offer carries the gathered candidates");
  assert.equal(pc.remoteDescription.sdp, "v=0\r\nanswer\r\n");
  assert.equal(client.resourceUrl, `${srv.base}/live/stk_1/whip/sess_1`);
  assert.equal(client.playbackUrl, `${srv.base}/live/str_1/whep`);
  assert.deepEqual(client.linkIceServers, [{ urls: "stun:127.0.0.1:3478" }]);
  assert.deepEqual(pc.configs.at(-1).iceServers, [{ urls: "stun:127.0.0.1:3478" }], "applied with setConfiguration");
  assert.equal(client.getPeerConnection(), pc);

  pc.setConnection("connected");
  assert.deepEqual(states.map((s) => s.state), ["connecting", "connected"]);
  assert.equal(states[1].iceGatheringState, "complete");
  assert.equal(states[1].signallingState, "stable");

  await assert.rejects(client.connect(), { message: "WHIP client already has an active connection" });

  await client.disconnect();
  const del = srv.requests.find((r) => r.method === "DELETE");
  assert.equal(del.url, "/live/stk_1/whip/sess_1");
  assert.equal(del.peerClosedAtDelete, false, "DELETE before the peer closes (else the server may have dropped the session)");
  assert.equal(pc.closed, true);
  assert.equal(pc.onconnectionstatechange, null, "handlers removed");
  assert.ok(stream.list.every((tr) => tr.readyState === "ended"), "tracks stopped");
  assert.equal(client.getPeerConnection(), null);
  assert.equal(states.at(-1).state, "closed");
  // No spurious events after an intentional close.
  pc.onconnectionstatechange?.();
  assert.equal(states.filter((s) => s.state === "failed").length, 0);
});

test("gathering budget: with a candidate but no completion, the offer leaves after exactly 1 s", async (t) => {
  const srv = await whipServer(answer201);
  t.after(srv.close);
  const { client, clock, fetches } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  const pc = FakePeer.last;
  pc.gather("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host");
  clock.advance(999);
  await settle();
  assert.equal(fetches.length, 0, "still inside the budget");
  clock.advance(1);
  await connecting;
  assert.equal(client.offerReason, "budget");
  assert.equal(fetches.length, 1);
  await client.disconnect();
});

test("no candidate at all: the 20 s iceGatheringTimeout is the hard cap", async (t) => {
  const srv = await whipServer(answer201);
  t.after(srv.close);
  const { client, clock, fetches } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  clock.advance(19999);
  await settle();
  assert.equal(fetches.length, 0);
  clock.advance(1);
  await connecting;
  assert.equal(client.offerReason, "cap");
  await client.disconnect();
});

test("server rejection: 'WHIP offer failed: 503' with the status, failed state, peer closed", async (t) => {
  const srv = await whipServer((req, res) => {
    res.writeHead(503, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: "not_ready", message: "stream not ready" }));
  });
  t.after(srv.close);
  const { client, states } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  FakePeer.last.complete();
  await assert.rejects(connecting, (e) => e instanceof WHIPError && e.message === "WHIP offer failed: 503" && e.status === 503 && e.detail.includes("stream not ready"));
  assert.deepEqual(states.map((s) => [s.state, s.error]), [["connecting", undefined], ["failed", "WHIP offer failed: 503"]]);
  assert.equal(FakePeer.last.closed, true);
  assert.equal(client.getPeerConnection(), null, "a new connect() may follow");
});

test("unreachable endpoint: rejected with status 0", async () => {
  const srv = await whipServer(answer201);
  await srv.close();
  const { client } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  FakePeer.last.complete();
  await assert.rejects(connecting, (e) => e instanceof WHIPError && e.status === 0 && e.message.startsWith("WHIP offer failed: "));
});

test("stream checks: no tracks, ended track", async () => {
  const { client } = makeClient("http://127.0.0.1:9", { stream: fakeStream({ tracks: 0 }) });
  await assert.rejects(client.connect(), { message: "MediaStream has no tracks" });
  const { client: c2 } = makeClient("http://127.0.0.1:9", { stream: fakeStream({ live: false }) });
  await assert.rejects(c2.connect(), { message: "Video track is not live" });
});

test("connection timeout: 45 s without 'connected' -> failed 'Connection timed out'", async (t) => {
  const srv = await whipServer(answer201);
  t.after(srv.close);
  const { client, clock, states } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  FakePeer.last.complete();
  await connecting;
  clock.advance(44999);
  assert.equal(states.at(-1).state, "connecting");
  clock.advance(1);
  assert.deepEqual([states.at(-1).state, states.at(-1).error], ["failed", "Connection timed out"]);
  await client.disconnect();
});

test("connection timeout while the POST hangs: connect() rejects with 'Connection timed out'", async (t) => {
  /** @type {import("node:http").ServerResponse[]} */
  const held = [];
  const srv = await whipServer((req, res) => held.push(res));
  t.after(async () => {
    for (const r of held) r.destroy();
    await srv.close();
  });
  const { client, clock } = makeClient(srv.base, { options: { connectionTimeout: 5000 } });
  const connecting = client.connect();
  await settle();
  FakePeer.last.complete();
  await waitFor(() => held.length === 1, "POST reached the server");
  clock.advance(5000);
  await assert.rejects(connecting, { message: "Connection timed out" });
});

test("ICE and peer failures use the table's messages", async (t) => {
  const srv = await whipServer(answer201);
  t.after(srv.close);
  for (const [script, message] of [
    [(pc) => pc.setIce("failed"), "ICE connection failed"],
    [(pc) => pc.setConnection("failed"), "Peer connection failed"],
  ]) {
    const { client, states } = makeClient(srv.base);
    const connecting = client.connect();
    await settle();
    FakePeer.last.complete();
    await connecting;
    script(FakePeer.last);
    assert.deepEqual([states.at(-1).state, states.at(-1).error], ["failed", message]);
    // One failure event only.
    FakePeer.last.setConnection("failed");
    assert.equal(states.filter((s) => s.state === "failed").length, 1);
    await client.disconnect();
  }
});

test("'disconnected' is reported as transient, then 'connected' again", async (t) => {
  const srv = await whipServer(answer201);
  t.after(srv.close);
  const { client, states } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  FakePeer.last.complete();
  await connecting;
  const pc = FakePeer.last;
  pc.setConnection("connected");
  pc.setConnection("disconnected");
  pc.setConnection("connected");
  assert.deepEqual(states.map((s) => s.state), ["connecting", "connected", "disconnected", "connected"]);
  await client.disconnect();
});

test("trickle on (class default): offer sent at once, candidates PATCHed as sdpfrag, 405 stops trickling", async (t) => {
  const srv = await whipServer(answer201);
  t.after(srv.close);
  const { client } = makeClient(srv.base, { options: { enableTrickleICE: true } });
  const connecting = client.connect();
  await connecting;
  assert.equal(client.offerReason, "trickle");
  const pc = FakePeer.last;
  pc.gather("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host");
  await waitFor(() => srv.requests.some((r) => r.method === "PATCH"), "trickle PATCH");
  const patch = srv.requests.find((r) => r.method === "PATCH");
  assert.equal(patch.url, "/live/stk_1/whip/sess_1");
  assert.equal(patch.headers["content-type"], "application/trickle-ice-sdpfrag");
  assert.match(patch.body, /^a=ice-ufrag:uf\r\na=ice-pwd:pwpwpwpwpwpwpwpwpwpwpwpw\r\nm=video 9 UDP\/TLS\/RTP\/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp/);
  await waitFor(() => client.trickleDisabled, "405 disables trickle");
  pc.gather("candidate:2 1 udp 1 127.0.0.1 50001 typ host");
  await settle();
  assert.equal(srv.requests.filter((r) => r.method === "PATCH").length, 1, "no PATCH after a 405");
  await client.disconnect();
});

test("disconnect: an unanswered DELETE does not hold the close longer than 2 s", async (t) => {
  /** @type {import("node:http").ServerResponse[]} */
  const held = [];
  const srv = await whipServer(answer201, { held });
  t.after(async () => {
    for (const r of held) r.destroy();
    await srv.close();
  });
  const { client, clock, states } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  FakePeer.last.complete();
  await connecting;
  const pc = FakePeer.last;
  const closing = client.disconnect();
  await waitFor(() => srv.requests.some((r) => r.method === "DELETE"), "DELETE sent");
  assert.equal(pc.closed, false);
  clock.advance(1999);
  await settle();
  assert.equal(pc.closed, false);
  clock.advance(1);
  await closing;
  assert.equal(pc.closed, true);
  assert.equal(states.at(-1).state, "closed");
});

test("disconnect during gathering aborts connect() and sends nothing", async (t) => {
  const srv = await whipServer(answer201);
  t.after(srv.close);
  const { client, fetches, states } = makeClient(srv.base);
  const connecting = client.connect();
  await settle();
  await client.disconnect();
  await assert.rejects(connecting);
  assert.equal(fetches.length, 0);
  assert.equal(states.filter((s) => s.state === "failed").length, 0, "no spurious failure on an intentional close");
});

test("waitBounded: resolves 'done' when the promise settles (either way), 'timeout' at the deadline", async () => {
  const clock = manualClock();
  /** @type {(v?: unknown) => void} */
  let resolveIt = () => {};
  const ok = waitBounded(new Promise((r) => (resolveIt = r)), 2000, clock);
  clock.advance(1999);
  resolveIt();
  assert.equal(await ok, "done");
  assert.deepEqual(clock.pending(), [], "its timer is cleared");

  let rejectIt = (/** @type {unknown} */ _e) => {};
  const failed = waitBounded(new Promise((_, r) => (rejectIt = r)), 2000, clock);
  rejectIt(new Error("network"));
  assert.equal(await failed, "done", "a rejection also ends the wait (never rejects)");

  let outcome = null;
  const hung = waitBounded(new Promise(() => {}), 2000, clock).then((r) => (outcome = r));
  clock.advance(1999);
  await settle();
  assert.equal(outcome, null, "still waiting at 1999 ms");
  clock.advance(1);
  assert.equal(await hung, "timeout");
});
