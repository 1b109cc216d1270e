// Output container sizes and iframe cropping tiers.
import { test } from "node:test";
import assert from "node:assert/strict";

import { CONTAINER_SIZES, IFRAME_CROP, MOBILE_MAX_WIDTH, iframeSrc, selectTier, tierStyles } from "../static/lib/display.js";

test("container sizes: desktop 38vh, desktop small 23vh, mobile min(75vw, 280px)", () => {
  assert.deepEqual(CONTAINER_SIZES, { default: "38vh", small: "23vh", mobile: "min(75vw, 280px)" });
});

test("tier selection: narrow viewports are mobile whatever the size choice", () => {
  assert.equal(selectTier({ viewportWidth: 375, small: false }), "mobile");
  assert.equal(selectTier({ viewportWidth: 375, small: true }), "mobile");
  assert.equal(selectTier({ viewportWidth: MOBILE_MAX_WIDTH, small: false }), "mobile");
  assert.equal(selectTier({ viewportWidth: MOBILE_MAX_WIDTH + 1, small: false }), "default");
  assert.equal(selectTier({ viewportWidth: 1440, small: false }), "default");
  assert.equal(selectTier({ viewportWidth: 1440, small: true }), "small");
});

test("iframe cropping: mobile 140%/-20%, desktop small 130%/-15%, desktop default 120%/-10%", () => {
  assert.deepEqual(IFRAME_CROP.mobile, { minHeight: "140%", marginTop: "-20%" });
  assert.deepEqual(IFRAME_CROP.small, { minHeight: "130%", marginTop: "-15%" });
  assert.deepEqual(IFRAME_CROP.default, { minHeight: "120%", marginTop: "-10%" });
  assert.deepEqual(tierStyles(selectTier({ viewportWidth: 390, small: false })), {
    container: { width: "min(75vw, 280px)", height: "min(75vw, 280px)" },
    iframe: { minHeight: "140%", marginTop: "-20%" },
  });
  assert.deepEqual(tierStyles("small").container, { width: "23vh", height: "23vh" });
  assert.deepEqual(tierStyles("default").iframe, { minHeight: "120%", marginTop: "-10%" });
});

test("iframe URL: lvpr.tv/?v=<output_playback_id>&lowLatency=force", () => {
  assert.equal(iframeSrc("https://lvpr.tv/", "abcd1234"), "https://lvpr.tv/?v=abcd1234&lowLatency=force");
  assert.equal(iframeSrc("https://lvpr.tv", "a b&c"), "https://lvpr.tv/?v=a+b%26c&lowLatency=force");
});
