// @ts-check
/**
 * StreamDiffusion parameters the Dream page sends: the default create payload, personas,
 * the minimal live-update (PATCH) payload, and the persona/prompt persistence rules.
 *
 * Mirrors the Rust `dreamgate-model` defaults exactly (`dreamgate params defaults`; the
 * end-to-end run checks they agree). Spec "Payload format": seed 42, 512x512, steps 25,
 * guidance 1.0, delta 0.7, sd21 ControlNets openpose 0.75 / hed 0.2 / canny 0.2 (100/200) /
 * depth 0.75 / color 0.2, `t_index_list [12, 20, 24]`, similar-image filter on, slerp prompt
 * interpolation, no IP adapter (sd21 has none), LCM LoRA omitted.
 *
 * Pure module: no DOM, no fetch. Storage is injected.
 *
 * @module params
 */

/** Pipeline name every payload carries. */
export const PIPELINE = "streamdiffusion";

/** Model the stream is created with; every PATCH repeats it. */
export const DEFAULT_MODEL_ID = "stabilityai/sd-turbo";

/** Base prompt; the page resets to it on every load (it is never persisted). */
export const DEFAULT_BASE_PROMPT = "cartoon magical dj blue sparkle";

/** Output (and capture canvas) size: 1:1, 512x512. */
export const OUTPUT_SIZE = 512;

/** @typedef {"androgynous" | "female" | "male"} PersonaId */

/** @typedef {{ id: PersonaId, label: string }} Persona */

/** Personas in picker order. `label` is what the page shows. @type {readonly Persona[]} */
export const PERSONAS = Object.freeze([
  Object.freeze({ id: /** @type {PersonaId} */ ("androgynous"), label: "Neutral" }),
  Object.freeze({ id: /** @type {PersonaId} */ ("female"), label: "Female" }),
  Object.freeze({ id: /** @type {PersonaId} */ ("male"), label: "Male" }),
]);

/** Persona used when nothing (valid) is stored. @type {PersonaId} */
export const DEFAULT_PERSONA = "androgynous";

/** localStorage key for the persona (the only persisted Dream setting). */
export const PERSONA_STORAGE_KEY = "dreamgate.persona";

/**
 * @param {unknown} value
 * @returns {value is PersonaId}
 */
export function isPersonaId(value) {
  return PERSONAS.some((p) => p.id === value);
}

/**
 * The prompt sent upstream: persona word + " " + base prompt.
 * A blank base falls back to the default base prompt.
 *
 * @param {PersonaId} persona
 * @param {string} base
 * @returns {string}
 */
export function buildPrompt(persona, base) {
  const trimmed = base.trim().replace(/\s+/g, " ");
  return `${persona} ${trimmed === "" ? DEFAULT_BASE_PROMPT : trimmed}`;
}

/**
 * @typedef {object} ControlNet
 * @property {string} model_id
 * @property {number} conditioning_scale
 * @property {string} preprocessor
 * @property {Record<string, number>} preprocessor_params
 * @property {boolean} enabled
 * @property {number} control_guidance_start
 * @property {number} control_guidance_end
 */

/**
 * @param {string} name sd21 ControlNet short name (openpose, hed, canny, depth, color)
 * @param {number} scale
 * @param {string} preprocessor
 * @param {Record<string, number>} [preprocessorParams]
 * @returns {ControlNet}
 */
function controlnet(name, scale, preprocessor, preprocessorParams = {}) {
  return {
    model_id: `thibaud/controlnet-sd21-${name}-diffusers`,
    conditioning_scale: scale,
    preprocessor,
    preprocessor_params: preprocessorParams,
    enabled: true,
    control_guidance_start: 0,
    control_guidance_end: 1,
  };
}

/**
 * Full default StreamDiffusion params with the given prompt.
 *
 * @param {string} prompt
 * @returns {Record<string, unknown>}
 */
export function defaultParams(prompt) {
  return {
    model_id: DEFAULT_MODEL_ID,
    prompt,
    negative_prompt: "blurry, low quality, flat, 2d",
    num_inference_steps: 25,
    seed: 42,
    width: OUTPUT_SIZE,
    height: OUTPUT_SIZE,
    guidance_scale: 1.0,
    delta: 0.7,
    t_index_list: [12, 20, 24],
    controlnets: [
      controlnet("openpose", 0.75, "pose_tensorrt"),
      controlnet("hed", 0.2, "soft_edge"),
      controlnet("canny", 0.2, "canny", { low_threshold: 100, high_threshold: 200 }),
      controlnet("depth", 0.75, "depth_tensorrt"),
      controlnet("color", 0.2, "passthrough"),
    ],
    acceleration: "tensorrt",
    use_denoising_batch: true,
    do_add_noise: true,
    enable_similar_image_filter: true,
    similar_image_filter_threshold: 0.98,
    similar_image_filter_max_skip_frame: 10,
    prompt_interpolation_method: "slerp",
    seed_interpolation_method: "linear",
    normalize_prompt_weights: true,
    normalize_seed_weights: true,
  };
}

/**
 * Body of `POST /api/daydream/streams`.
 *
 * @param {string} prompt full prompt (see {@link buildPrompt})
 * @returns {{ pipeline: string, params: Record<string, unknown> }}
 */
export function createPayload(prompt) {
  return { pipeline: PIPELINE, params: defaultParams(prompt) };
}

/**
 * Minimal dynamic (no pipeline reload) update: `{pipeline, params:{model_id, prompt}}`.
 * `model_id` is always the one the stream was created with.
 *
 * @param {string} modelId
 * @param {string} prompt
 * @returns {{ pipeline: string, params: { model_id: string, prompt: string } }}
 */
export function promptUpdatePayload(modelId, prompt) {
  return { pipeline: PIPELINE, params: { model_id: modelId, prompt } };
}

/** Top-level parameters that update without a pipeline reload (the model crate's `DYNAMIC_FIELDS`). */
export const DYNAMIC_FIELDS = Object.freeze(["prompt", "guidance_scale", "delta", "num_inference_steps", "t_index_list", "seed"]);

/**
 * Whether two `controlnets` values are equal arrays but for `conditioning_scale` values.
 * @param {unknown} before
 * @param {unknown} after
 */
function onlyScalesDiffer(before, after) {
  if (!Array.isArray(before) || !Array.isArray(after) || before.length !== after.length) return false;
  /** @param {unknown} cn */
  const withoutScale = (cn) => {
    if (cn === null || typeof cn !== "object" || Array.isArray(cn)) return null;
    const { conditioning_scale: _scale, ...rest } = /** @type {Record<string, unknown>} */ (cn);
    return JSON.stringify(rest);
  };
  return before.every((b, i) => {
    const x = withoutScale(b);
    return x !== null && x === withoutScale(after[i]);
  });
}

/**
 * The minimal live update from `current` to `wanted` params, classified like the model
 * crate's `plan_update` (`crates/model/src/update.rs`): only the parameters of `wanted` that
 * differ are sent, `model_id` always (wanted's, else current's, else the default); it reloads
 * the pipeline (about 30 s upstream) when a changed parameter is not hot-updatable (model,
 * size, ControlNet set...), a ControlNet change other than scales included.
 *
 * @param {Record<string, unknown>} current
 * @param {Record<string, unknown>} wanted
 * @returns {{ body: { pipeline: string, params: Record<string, unknown> }, reload: boolean, changed: string[] }}
 */
export function planUpdate(current, wanted) {
  /** @type {Record<string, unknown>} */
  const params = {};
  /** @type {string[]} */
  const changed = [];
  let reload = false;
  for (const [key, value] of Object.entries(wanted)) {
    if (JSON.stringify(current[key]) === JSON.stringify(value)) continue;
    reload ||= key === "controlnets" ? !onlyScalesDiffer(current[key], value) : !DYNAMIC_FIELDS.includes(key);
    changed.push(key);
    params[key] = value;
  }
  const model = typeof wanted.model_id === "string" ? wanted.model_id : typeof current.model_id === "string" ? current.model_id : DEFAULT_MODEL_ID;
  delete params.model_id;
  return { body: { pipeline: PIPELINE, params: { model_id: model, ...params } }, reload, changed };
}

/**
 * The bits of `Storage` the settings need (so tests inject a Map-backed fake).
 * @typedef {{ getItem(key: string): string | null, setItem(key: string, value: string): void }} KeyValueStore
 */

/**
 * Reads the stored persona; anything unknown (or a throwing store, e.g. privacy mode)
 * gives the default.
 *
 * @param {KeyValueStore | null | undefined} store
 * @returns {PersonaId}
 */
export function loadPersona(store) {
  try {
    const value = store?.getItem(PERSONA_STORAGE_KEY);
    return isPersonaId(value) ? value : DEFAULT_PERSONA;
  } catch {
    return DEFAULT_PERSONA;
  }
}

/**
 * Stores the persona (ignoring storage errors: the choice still applies this session).
 *
 * @param {KeyValueStore | null | undefined} store
 * @param {PersonaId} persona
 */
export function savePersona(store, persona) {
  try {
    store?.setItem(PERSONA_STORAGE_KEY, persona);
  } catch {
    // Quota or privacy mode: nothing to do.
  }
}

/**
 * Initial settings on page load: the persisted persona, and the DEFAULT base prompt
 * (the prompt is deliberately not persisted: each session starts fresh).
 *
 * @param {KeyValueStore | null | undefined} store
 * @returns {{ persona: PersonaId, basePrompt: string }}
 */
export function initialSettings(store) {
  return { persona: loadPersona(store), basePrompt: DEFAULT_BASE_PROMPT };
}
