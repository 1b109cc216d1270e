// @ts-check
/**
 * Pure WebRTC signalling helpers shared by the WHIP client and the WHEP player: the
 * `Link` header's ICE servers (RFC 8840 / WHIP §4.6), the `Location` resource, the H.264
 * codec order, and trickle-ICE SDP fragments. No DOM, no fetch, no timers.
 *
 * @module signalling
 */

/**
 * Splits a header value on commas that are outside `<...>` and quotes.
 * @param {string} value
 * @returns {string[]}
 */
function splitHeaderList(value) {
  /** @type {string[]} */
  const parts = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"' && value[i - 1] !== "\\") quoted = !quoted;
    else if (!quoted && c === "<") depth++;
    else if (!quoted && c === ">") depth = Math.max(0, depth - 1);
    else if (!quoted && depth === 0 && c === ",") {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

/**
 * ICE servers advertised in a `Link` header (RFC 8840 / WHIP §4.6):
 * `<stun:host:port>; rel="ice-server"`, `<turn:host?transport=udp>; rel="ice-server";
 * username="u"; credential="c"; credential-type="password"`. Other relations are ignored.
 *
 * @param {string | null | undefined} header
 * @returns {RTCIceServer[]}
 */
export function parseLinkHeader(header) {
  if (!header) return [];
  /** @type {RTCIceServer[]} */
  const servers = [];
  for (const entry of splitHeaderList(header)) {
    const m = /^<([^>]*)>(.*)$/s.exec(entry);
    if (!m) continue;
    const url = m[1].trim();
    /** @type {Record<string, string>} */
    const attrs = {};
    for (const piece of m[2].split(";")) {
      const kv = /^\s*([A-Za-z0-9_-]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*)))?\s*$/.exec(piece);
      if (!kv) continue;
      attrs[kv[1].toLowerCase()] = (kv[2] ?? kv[3] ?? "").replace(/\\(.)/g, "$1");
    }
    const rels = (attrs.rel ?? "").toLowerCase().split(/\s+/);
    if (!rels.includes("ice-server") || !/^(stuns?|turns?):/i.test(url)) continue;
    /** @type {RTCIceServer} */
    const server = { urls: url };
    if (attrs.username !== undefined) server.username = attrs.username;
    if (attrs.credential !== undefined) server.credential = attrs.credential;
    servers.push(server);
  }
  return servers;
}

/**
 * The session resource from a `Location` header, resolved against the request URL.
 *
 * @param {string | null | undefined} location
 * @param {string} requestUrl absolute URL of the POST
 * @returns {string | null}
 */
export function resolveResourceUrl(location, requestUrl) {
  if (!location) return null;
  try {
    return new URL(location, requestUrl).href;
  } catch {
    return null;
  }
}

/**
 * Codec order with H.264 first: packetization-mode=1 constrained baseline (42e01f) first,
 * then other packetization-mode=1 H.264, then other H.264, then everything else in its
 * original order (RTX/RED/FEC stay available).
 *
 * @template {{ mimeType: string, sdpFmtpLine?: string }} C
 * @param {readonly C[]} codecs
 * @returns {C[]}
 */
export function preferH264(codecs) {
  /** @param {C} c */
  const rank = (c) => {
    if (c.mimeType.toLowerCase() !== "video/h264") return 3;
    const fmtp = (c.sdpFmtpLine ?? "").toLowerCase();
    const mode1 = /packetization-mode=1/.test(fmtp);
    if (mode1 && /profile-level-id=42e0/.test(fmtp)) return 0;
    return mode1 ? 1 : 2;
  };
  return codecs
    .map((c, i) => ({ c, i, r: rank(c) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.c);
}

/**
 * A trickle-ICE SDP fragment (RFC 8840) for one media section.
 *
 * @param {{ ufrag: string, pwd: string, mid: string, candidates: string[], end?: boolean }} frag
 * @returns {string}
 */
export function buildSdpFrag(frag) {
  const lines = [`a=ice-ufrag:${frag.ufrag}`, `a=ice-pwd:${frag.pwd}`, "m=video 9 UDP/TLS/RTP/SAVPF 0", `a=mid:${frag.mid}`];
  for (const c of frag.candidates) lines.push(c.startsWith("a=") ? c : `a=${c}`);
  if (frag.end) lines.push("a=end-of-candidates");
  return lines.join("\r\n") + "\r\n";
}

/**
 * `a=ice-ufrag` / `a=ice-pwd` of an SDP (first occurrence).
 * @param {string} sdp
 */
export function iceCredentials(sdp) {
  return {
    ufrag: /^a=ice-ufrag:(.+)$/m.exec(sdp)?.[1]?.trim() ?? "",
    pwd: /^a=ice-pwd:(.+)$/m.exec(sdp)?.[1]?.trim() ?? "",
  };
}
