// Daydream's official REST SDK (`@daydreamlive/sdk`, pinned in package.json, run from node:
// no browser) against `dreamgate engine`: every call completes without a validation error
// (the SDK checks each answer against Daydream's published schemas), `getAll` lists the
// stream, and the documented errors arrive as the SDK's typed errors.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { Daydream } from "@daydreamlive/sdk";
import * as errors from "@daydreamlive/sdk/models/errors";

import { startEngine } from "./harness.mjs";

const KEY = "daydream_live_sdk_rest_e2e";

describe("the official REST SDK against the engine", () => {
  /** @type {Awaited<ReturnType<typeof startEngine>>} */
  let engine;
  /** @type {Daydream} */
  let sdk;
  before(async () => {
    engine = await startEngine({ key: KEY });
    sdk = new Daydream({ bearer: KEY, serverURL: engine.base });
  });
  after(async () => {
    await engine?.stop();
  });

  test("create, getById, getAll, update, delete: no validation error, the stream is listed", async () => {
    const created = await sdk.streams.create({
      pipeline: "streamdiffusion",
      params: { modelId: "stabilityai/sd-turbo", prompt: "a calm blue sea" },
      name: "sdk e2e",
    });
    assert.match(created.id, /^str_/);
    assert.equal(created.pipeline, "streamdiffusion");
    assert.equal(created.name, "sdk e2e");
    assert.ok(created.whipUrl.startsWith(`${engine.base}/live/video-to-video/`), created.whipUrl);
    assert.ok("outputStreamUrl" in created, "output_stream_url is read (null without RTMP)");

    const got = await sdk.streams.getById({ id: created.id });
    assert.equal(got.id, created.id);
    assert.equal(got.streamKey, created.streamKey);

    const all = await sdk.streams.getAll();
    assert.equal(all.success, true);
    assert.ok(all.data.some((s) => /** @type {any} */ (s).id === created.id), JSON.stringify(all.data));

    const updated = await sdk.streams.update({
      id: created.id,
      body: { pipeline: "streamdiffusion", params: { modelId: "stabilityai/sd-turbo", prompt: "a stormy sea" } },
    });
    assert.equal(updated.id, created.id);
    const params = /** @type {any} */ (updated.params);
    const prompt = params.prompt ?? params.raw?.prompt;
    assert.equal(prompt, "a stormy sea");

    const deleted = await sdk.streams.delete({ id: created.id });
    assert.equal(deleted.success, true);
    const after = await sdk.streams.getAll();
    assert.ok(!after.data.some((s) => /** @type {any} */ (s).id === created.id), "gone from the list");
  });

  test("the documented errors are the SDK's typed errors", async () => {
    await assert.rejects(sdk.streams.getById({ id: "str_neverCreated00000" }), (e) => {
      assert.ok(e instanceof errors.NotFoundError, `${e?.constructor?.name}: ${e}`);
      assert.equal(e.statusCode, 404);
      assert.equal(e.data$.status, 404);
      return true;
    });
    await assert.rejects(
      sdk.streams.update({
        id: "str_neverCreated00000",
        body: { pipeline: "streamdiffusion", params: { modelId: "stabilityai/sd-turbo", prompt: "x" } },
      }),
      (e) => e instanceof errors.NotFoundError,
    );
    await assert.rejects(sdk.streams.delete({ id: "str_neverCreated00000" }), (e) => e instanceof errors.NotFoundError);
    await assert.rejects(
      sdk.streams.create({ pipeline: "streamdiffusion", params: { modelId: "stabilityai/sd-turbo", width: 100 } }),
      (e) => {
        assert.ok(e instanceof errors.BadRequestError, `${e?.constructor?.name}: ${e}`);
        assert.equal(e.statusCode, 400);
        assert.ok(JSON.stringify(e.data$.details).includes("params.width"), JSON.stringify(e.data$));
        return true;
      },
    );
    const anonymous = new Daydream({ bearer: "daydream_live_wrong", serverURL: engine.base });
    await assert.rejects(anonymous.streams.getAll(), (e) => {
      assert.ok(e instanceof errors.UnauthorizedError, `${e?.constructor?.name}: ${e}`);
      assert.equal(e.statusCode, 401);
      return true;
    });
  });
});
