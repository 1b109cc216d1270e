// @ts-check
/**
 * The stats panel over the output: a toggle button (keyboard accessible, `aria-expanded`),
 * and while it is open a sample of both peers' `getStats()` every second, shown as figures
 * and a verdict (`stats.js`). Sampling stops when the panel closes.
 * @module stats-panel
 */

import { figureLines, figures, readSample, verdict } from "./stats.js";

/** How often the open panel samples. */
export const STATS_INTERVAL_MS = 1000;

/**
 * @typedef {object} StatsSources
 * @property {() => RTCPeerConnection | null} up the publishing (WHIP) peer
 * @property {() => RTCPeerConnection | null} down the playing (WHEP) peer
 * @property {() => import("./stats.js").StreamCondition} condition what the stream says
 */

/**
 * @param {RTCPeerConnection | null} pc
 * @returns {Promise<Record<string, any>[] | null>}
 */
async function statsOf(pc) {
  if (!pc || pc.connectionState === "closed") return null;
  try {
    return [...(await pc.getStats()).values()];
  } catch {
    return null;
  }
}

/**
 * @param {{ toggle: HTMLButtonElement, panel: HTMLElement, list: HTMLElement, verdict: HTMLElement }} els
 * @param {StatsSources} sources
 */
export function setupStatsPanel(els, sources) {
  /** @type {ReturnType<typeof setInterval> | null} */
  let timer = null;
  /** @type {import("./stats.js").Sample | null} */
  let prev = null;

  const sample = async () => {
    const [up, down] = await Promise.all([statsOf(sources.up()), statsOf(sources.down())]);
    if (timer === null) return;
    const cur = readSample(up, down, performance.now());
    const f = figures(prev, cur);
    prev = cur;
    const rows = figureLines(f).map(([label, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    });
    els.list.replaceChildren(...rows.flat());
    const v = verdict(f, sources.condition());
    els.verdict.textContent = `${v.verdict[0].toUpperCase()}${v.verdict.slice(1)}: ${v.reason}`;
    els.verdict.dataset.verdict = v.verdict;
  };

  const setOpen = (/** @type {boolean} */ open) => {
    els.panel.hidden = !open;
    els.toggle.setAttribute("aria-expanded", String(open));
    if (timer !== null) clearInterval(timer);
    timer = null;
    prev = null;
    if (open) {
      els.verdict.textContent = "Measuring…";
      delete els.verdict.dataset.verdict;
      els.list.replaceChildren();
      timer = setInterval(() => void sample(), STATS_INTERVAL_MS);
      void sample();
    }
  };

  els.toggle.addEventListener("click", () => setOpen(els.panel.hidden === true));
  setOpen(false);
}
