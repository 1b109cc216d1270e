// @ts-check
/**
 * The 1:1 output container and the lvpr.tv iframe cropping (spec "Display container" and
 * "Iframe cropping"). Pure: the shell applies the returned values with `element.style`.
 *
 * @module display
 */

/** @typedef {"mobile" | "small" | "default"} Tier */

/** Viewports up to this width (CSS px) use the mobile tier. */
export const MOBILE_MAX_WIDTH = 767;

/** Side of the square output container per tier (spec: 38vh, 23vh, min(75vw, 280px)). */
export const CONTAINER_SIZES = Object.freeze({
  default: "38vh",
  small: "23vh",
  mobile: "min(75vw, 280px)",
});

/**
 * Iframe scaling that hides the Livepeer player controls, per tier
 * (mobile 140% / -20%, desktop small 130% / -15%, desktop default 120% / -10%).
 * Percent margins resolve against the (square) container's width.
 */
export const IFRAME_CROP = Object.freeze({
  mobile: Object.freeze({ minHeight: "140%", marginTop: "-20%" }),
  small: Object.freeze({ minHeight: "130%", marginTop: "-15%" }),
  default: Object.freeze({ minHeight: "120%", marginTop: "-10%" }),
});

/**
 * Chooses the tier: narrow viewports are "mobile"; on desktop the user's size choice.
 *
 * @param {{ viewportWidth: number, small: boolean }} view
 * @returns {Tier}
 */
export function selectTier(view) {
  if (view.viewportWidth <= MOBILE_MAX_WIDTH) return "mobile";
  return view.small ? "small" : "default";
}

/**
 * Styles for the container and the iframe in a tier.
 *
 * @param {Tier} tier
 * @returns {{ container: { width: string, height: string }, iframe: { minHeight: string, marginTop: string } }}
 */
export function tierStyles(tier) {
  const side = CONTAINER_SIZES[tier];
  return { container: { width: side, height: side }, iframe: { ...IFRAME_CROP[tier] } };
}

/**
 * The Livepeer player URL: `<iframeBase>?v=<output_playback_id>&lowLatency=force`.
 *
 * @param {string} iframeBase e.g. "https://lvpr.tv/" (from `GET /api/daydream/config`)
 * @param {string} playbackId
 * @returns {string}
 */
export function iframeSrc(iframeBase, playbackId) {
  const url = new URL(iframeBase);
  url.searchParams.set("v", playbackId);
  url.searchParams.set("lowLatency", "force");
  return url.href;
}
