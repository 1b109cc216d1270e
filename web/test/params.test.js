// Default payload, personas, live-update payload and the persistence rules.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  DEFAULT_BASE_PROMPT,
  DEFAULT_PERSONA,
  PERSONAS,
  PERSONA_STORAGE_KEY,
  buildPrompt,
  createPayload,
  initialSettings,
  isPersonaId,
  loadPersona,
  promptUpdatePayload,
  savePersona,
} from "../static/lib/params.js";

/** A Map-backed Storage stand-in. */
function memoryStore(entries = {}) {
  const map = new Map(Object.entries(entries));
  return {
    map,
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, String(v)),
  };
}

test("personas: Neutral / Female / Male = androgynous / female / male", () => {
  assert.deepEqual(
    PERSONAS.map((p) => [p.label, p.id]),
    [
      ["Neutral", "androgynous"],
      ["Female", "female"],
      ["Male", "male"],
    ],
  );
  assert.equal(DEFAULT_PERSONA, "androgynous");
  assert.equal(isPersonaId("female"), true);
  assert.equal(isPersonaId("robot"), false);
});

test("prompt = persona + ' ' + base; blank base falls back to the default", () => {
  assert.equal(DEFAULT_BASE_PROMPT, "cartoon magical dj blue sparkle");
  assert.equal(buildPrompt("androgynous", DEFAULT_BASE_PROMPT), "androgynous cartoon magical dj blue sparkle");
  assert.equal(buildPrompt("female", "  neon   city "), "female neon city");
  assert.equal(buildPrompt("male", "   "), "male cartoon magical dj blue sparkle");
});

test("default create payload follows the spec's defaults", () => {
  const body = createPayload(buildPrompt("androgynous", DEFAULT_BASE_PROMPT));
  assert.equal(body.pipeline, "streamdiffusion");
  const p = body.params;
  assert.equal(p.model_id, "stabilityai/sd-turbo");
  assert.equal(p.prompt, "androgynous cartoon magical dj blue sparkle");
  assert.equal(p.seed, 42);
  assert.equal(p.width, 512);
  assert.equal(p.height, 512);
  assert.equal(p.num_inference_steps, 25);
  assert.equal(p.guidance_scale, 1.0);
  assert.equal(p.delta, 0.7);
  assert.deepEqual(p.t_index_list, [12, 20, 24]);
  assert.equal(p.enable_similar_image_filter, true);
  assert.equal(p.prompt_interpolation_method, "slerp");
  assert.equal("ip_adapter" in p, false, "IP adapter disabled (sd21 has none)");
  assert.equal("use_lcm_lora" in p, false, "LCM LoRA omitted");
  const nets = /** @type {any[]} */ (p.controlnets);
  assert.deepEqual(
    nets.map((c) => [c.model_id, c.conditioning_scale]),
    [
      ["thibaud/controlnet-sd21-openpose-diffusers", 0.75],
      ["thibaud/controlnet-sd21-hed-diffusers", 0.2],
      ["thibaud/controlnet-sd21-canny-diffusers", 0.2],
      ["thibaud/controlnet-sd21-depth-diffusers", 0.75],
      ["thibaud/controlnet-sd21-color-diffusers", 0.2],
    ],
  );
  assert.deepEqual(nets[2].preprocessor_params, { low_threshold: 100, high_threshold: 200 });
  for (const c of nets) {
    assert.equal(c.enabled, true);
    assert.ok(c.conditioning_scale >= 0 && c.conditioning_scale <= 1);
  }
  // Each call is a fresh object (callers may mutate).
  assert.notEqual(createPayload("x").params, createPayload("x").params);
});

test("live update payload is minimal: {pipeline, params:{model_id, prompt}}", () => {
  assert.deepEqual(promptUpdatePayload("stabilityai/sd-turbo", "female cartoon magical dj blue sparkle"), {
    pipeline: "streamdiffusion",
    params: { model_id: "stabilityai/sd-turbo", prompt: "female cartoon magical dj blue sparkle" },
  });
});

test("persona persists in storage; unknown or missing values give the default", () => {
  const store = memoryStore();
  assert.equal(loadPersona(store), "androgynous");
  savePersona(store, "female");
  assert.equal(store.map.get(PERSONA_STORAGE_KEY), "female");
  assert.equal(loadPersona(store), "female");
  assert.equal(loadPersona(memoryStore({ [PERSONA_STORAGE_KEY]: "robot" })), "androgynous");
  assert.equal(loadPersona(null), "androgynous");
});

test("storage errors never break the page", () => {
  const broken = {
    getItem() {
      throw new Error("SecurityError");
    },
    setItem() {
      throw new Error("QuotaExceededError");
    },
  };
  assert.equal(loadPersona(broken), "androgynous");
  assert.doesNotThrow(() => savePersona(broken, "male"));
});

test("reload: persona restored, prompt reset to the default (prompt is never persisted)", () => {
  const store = memoryStore();
  savePersona(store, "male");
  // Whatever else is in storage, the prompt comes back as the default.
  store.setItem("dreamgate.prompt", "neon city");
  const settings = initialSettings(store);
  assert.deepEqual(settings, { persona: "male", basePrompt: "cartoon magical dj blue sparkle" });
  // Nothing but the persona is ever written.
  const fresh = memoryStore();
  savePersona(fresh, "female");
  assert.deepEqual([...fresh.map.keys()], [PERSONA_STORAGE_KEY]);
});
