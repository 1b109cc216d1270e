//! Validation of StreamDiffusion parameters against the public schema.
//!
//! Validation never stops at the first problem: every rule runs and every
//! problem comes back as a [`FieldError`] naming the JSON path
//! (`params.controlnets[2].model_id`).
//!
//! Cross-field rules (t_index_list against num_inference_steps, ControlNet and IP
//! adapter families, cached attention against acceleration and size) use the
//! given value or, in full validation, the spec default for an absent field
//! (num_inference_steps 25, acceleration tensorrt, 512x512). Partial validation
//! (updates) only checks a cross-field rule when both sides are given.

use std::collections::HashSet;

use crate::catalog::{self, Family};
use crate::defaults;
use crate::error::FieldError;
use crate::params::{Acceleration, IpAdapterType, Processing, Prompt, Seed, StreamParams};

/// Smallest accepted width/height.
pub const MIN_SIZE: i64 = 384;
/// Largest accepted width/height.
pub const MAX_SIZE: i64 = 1024;
/// Width/height must be a multiple of this.
pub const SIZE_STEP: i64 = 64;
/// Largest accepted `ip_adapter_style_image_url` data URI payload (decoded bytes).
pub const MAX_STYLE_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// How much of the schema must be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A create payload: model_id required, absent fields take spec defaults in cross-field rules.
    Full,
    /// An update: only given fields are checked, cross-field rules need both sides.
    Partial,
}

/// Fully validates params (as for a create payload) and returns every problem.
///
/// ```
/// use dreamgate_model::{default_params, validate_params};
/// let mut p = default_params();
/// assert!(validate_params(&p).is_empty());
/// p.width = Some(500);
/// p.num_inference_steps = Some(0);
/// let fields: Vec<_> = validate_params(&p).into_iter().map(|e| e.field).collect();
/// assert!(fields.contains(&"params.width".to_string()));
/// assert!(fields.contains(&"params.num_inference_steps".to_string()));
/// ```
pub fn validate_params(p: &StreamParams) -> Vec<FieldError> {
    validate(p, Mode::Full)
}

/// Validates with the given [`Mode`].
pub(crate) fn validate(p: &StreamParams, mode: Mode) -> Vec<FieldError> {
    let mut v = Validator { p, mode, errors: Vec::new(), family: None };
    v.run();
    v.errors
}

struct Validator<'a> {
    p: &'a StreamParams,
    mode: Mode,
    errors: Vec<FieldError>,
    family: Option<Family>,
}

impl Validator<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// The given value, or in full mode the default's.
    fn effective<T: Clone>(&self, get: impl Fn(&StreamParams) -> Option<T>) -> Option<T> {
        get(self.p).or_else(|| match self.mode {
            Mode::Full => get(&defaults::default_params()),
            Mode::Partial => None,
        })
    }

    fn run(&mut self) {
        self.model();
        self.prompt();
        self.size();
        self.steps();
        self.seed();
        self.ranges();
        self.controlnets();
        self.processing();
        self.ip_adapter();
        self.cached_attention();
    }

    fn model(&mut self) {
        match self.p.model_id.as_deref() {
            None if self.mode == Mode::Full => self.err("params.model_id", "is required"),
            None => {}
            Some(id) => match catalog::model_family(id) {
                Some(family) => self.family = Some(family),
                None => {
                    let known: Vec<&str> = catalog::MODELS.iter().map(|(id, _)| *id).collect();
                    self.err("params.model_id", format!("unknown model {id:?}; known: {}", known.join(", ")));
                }
            },
        }
    }

    fn prompt(&mut self) {
        match &self.p.prompt {
            Some(Prompt::Text(text)) if text.trim().is_empty() => self.err("params.prompt", "must not be empty"),
            None | Some(Prompt::Text(_)) => {}
            Some(Prompt::Weighted(list)) => {
                if list.is_empty() {
                    self.err("params.prompt", "must list at least one [text, weight] pair");
                }
                for (i, (text, _)) in list.iter().enumerate() {
                    if text.trim().is_empty() {
                        self.err(format!("params.prompt[{i}]"), "prompt text must not be empty");
                    }
                }
            }
        }
    }

    fn size(&mut self) {
        for (name, value) in [("width", self.p.width), ("height", self.p.height)] {
            if let Some(px) = value {
                if !(MIN_SIZE..=MAX_SIZE).contains(&px) || px % SIZE_STEP != 0 {
                    self.err(
                        format!("params.{name}"),
                        format!("must be between {MIN_SIZE} and {MAX_SIZE} and a multiple of {SIZE_STEP} (got {px})"),
                    );
                }
            }
        }
    }

    fn steps(&mut self) {
        let steps = self.p.num_inference_steps;
        let steps_ok = steps.is_none_or(|s| (1..=100).contains(&s));
        if let Some(s) = steps.filter(|_| !steps_ok) {
            self.err("params.num_inference_steps", format!("must be between 1 and 100 (got {s})"));
        }
        let Some(list) = &self.p.t_index_list else { return };
        if list.is_empty() || list.len() > 4 {
            self.err("params.t_index_list", format!("must have 1 to 4 entries (got {})", list.len()));
        }
        if list.windows(2).any(|w| w[0] > w[1]) {
            self.err("params.t_index_list", "values must be non-decreasing");
        }
        let max = if steps_ok { self.effective(|p| p.num_inference_steps) } else { None };
        for (i, &t) in list.iter().enumerate() {
            match max {
                Some(max) if !(0..=max).contains(&t) => self.err(
                    format!("params.t_index_list[{i}]"),
                    format!("must be between 0 and num_inference_steps ({max}) (got {t})"),
                ),
                None if t < 0 => self.err(format!("params.t_index_list[{i}]"), format!("must be >= 0 (got {t})")),
                _ => {}
            }
        }
    }

    fn seed(&mut self) {
        if let Some(Seed::Weighted(list)) = &self.p.seed {
            if list.is_empty() {
                self.err("params.seed", "must list at least one [seed, weight] pair");
            }
        }
    }

    fn ranges(&mut self) {
        if let Some(t) = self.p.similar_image_filter_threshold {
            if !(0.0..=1.0).contains(&t) {
                self.err("params.similar_image_filter_threshold", format!("must be between 0 and 1 (got {t})"));
            }
        }
        if let Some(n) = self.p.similar_image_filter_max_skip_frame {
            if n < 0 {
                self.err("params.similar_image_filter_max_skip_frame", format!("must be >= 0 (got {n})"));
            }
        }
    }

    fn controlnets(&mut self) {
        let Some(list) = &self.p.controlnets else { return };
        let mut seen = HashSet::new();
        for (i, cn) in list.iter().enumerate() {
            let at = format!("params.controlnets[{i}]");
            match cn.model_id.as_deref() {
                None => self.err(format!("{at}.model_id"), "is required"),
                Some(id) => {
                    if !seen.insert(id) {
                        self.err(format!("{at}.model_id"), format!("duplicate ControlNet {id:?}"));
                    }
                    match (catalog::controlnet_family(id), self.family) {
                        (None, _) => self.err(format!("{at}.model_id"), format!("unknown ControlNet {id:?}")),
                        (Some(cn_family), Some(family)) if cn_family != family => self.err(
                            format!("{at}.model_id"),
                            format!("{id:?} is a {cn_family} ControlNet but the model is {family}"),
                        ),
                        _ => {}
                    }
                }
            }
            if let Some(scale) = cn.conditioning_scale {
                if !(0.0..=1.0).contains(&scale) {
                    self.err(format!("{at}.conditioning_scale"), format!("must be between 0 and 1 (got {scale})"));
                }
            }
            if let Some(kind) = cn.preprocessor.as_deref() {
                if !catalog::is_image_processor(kind) {
                    self.err(format!("{at}.preprocessor"), unknown_kind(kind, catalog::IMAGE_PROCESSORS));
                }
            }
            let start = cn.control_guidance_start;
            let end = cn.control_guidance_end;
            for (name, value) in [("control_guidance_start", start), ("control_guidance_end", end)] {
                if let Some(x) = value.filter(|x| !(0.0..=1.0).contains(x)) {
                    self.err(format!("{at}.{name}"), format!("must be between 0 and 1 (got {x})"));
                }
            }
            if let (Some(s), Some(e)) = (start, end) {
                if s > e {
                    self.err(format!("{at}.control_guidance_end"), "must not be below control_guidance_start");
                }
            }
        }
        let enabled = list.iter().filter(|cn| cn.is_enabled()).count();
        if self.family == Some(Family::Sdxl) && enabled > catalog::SDXL_MAX_ENABLED_CONTROLNETS {
            self.err(
                "params.controlnets",
                format!(
                    "at most {} ControlNets may be enabled on an sdxl model (got {enabled})",
                    catalog::SDXL_MAX_ENABLED_CONTROLNETS
                ),
            );
        }
    }

    fn processing(&mut self) {
        let p = self.p;
        let chains: [(&str, &Option<Processing>, &[&str]); 4] = [
            ("image_preprocessing", &p.image_preprocessing, catalog::IMAGE_PROCESSORS),
            ("image_postprocessing", &p.image_postprocessing, catalog::IMAGE_PROCESSORS),
            ("latent_preprocessing", &p.latent_preprocessing, catalog::LATENT_PROCESSORS),
            ("latent_postprocessing", &p.latent_postprocessing, catalog::LATENT_PROCESSORS),
        ];
        for (name, chain, kinds) in chains {
            let Some(processors) = chain.as_ref().and_then(|c| c.processors.as_ref()) else { continue };
            for (i, proc) in processors.iter().enumerate() {
                let at = format!("params.{name}.processors[{i}].type");
                match proc.kind.as_deref() {
                    None => self.err(at, "is required"),
                    Some(kind) if !kinds.contains(&kind) => self.err(at, unknown_kind(kind, kinds)),
                    Some(_) => {}
                }
            }
        }
    }

    fn ip_adapter(&mut self) {
        if let Some(ip) = &self.p.ip_adapter {
            match self.family {
                Some(Family::Sd21) if ip.is_enabled() => {
                    self.err("params.ip_adapter", "is only available on sd15 and sdxl models")
                }
                Some(family) if family != Family::Sdxl && ip.kind == Some(IpAdapterType::Faceid) => {
                    self.err("params.ip_adapter.type", "faceid is only available on sdxl models")
                }
                _ => {}
            }
        }
        if let Some(url) = self.p.ip_adapter_style_image_url.as_deref() {
            if let Err(message) = check_style_image_url(url) {
                self.err("params.ip_adapter_style_image_url", message);
            }
        }
    }

    fn cached_attention(&mut self) {
        let Some(ca) = &self.p.cached_attention else { return };
        if let Some(n) = ca.max_frames.filter(|n| !(1..=4).contains(n)) {
            self.err("params.cached_attention.max_frames", format!("must be between 1 and 4 (got {n})"));
        }
        if let Some(n) = ca.interval.filter(|n| !(1..=240).contains(n)) {
            self.err("params.cached_attention.interval", format!("must be between 1 and 240 (got {n})"));
        }
        if !ca.is_enabled() {
            return;
        }
        if let Some(acc) = self.effective(|p| p.acceleration).filter(|a| *a != Acceleration::Tensorrt) {
            self.err("params.cached_attention", format!("needs acceleration tensorrt (got {acc})"));
        }
        let (w, h) = (self.effective(|p| p.width), self.effective(|p| p.height));
        if w.is_some_and(|w| w != 512) || h.is_some_and(|h| h != 512) {
            self.err("params.cached_attention", "needs width and height 512");
        }
    }
}

fn unknown_kind(kind: &str, allowed: &[&str]) -> String {
    format!("unknown type {kind:?}; allowed: {}", allowed.join(", "))
}

/// An https URL with a host, or a `data:<mime>;base64,<payload>` URI whose
/// payload decodes to at most [`MAX_STYLE_IMAGE_BYTES`].
fn check_style_image_url(url: &str) -> Result<(), String> {
    if let Some(rest) = url.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || url.chars().any(char::is_whitespace) {
            return Err("must be a valid https URL".into());
        }
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("data:") else {
        return Err("must be an https URL or a base64 data URI".into());
    };
    let Some((_, payload)) = rest.split_once(";base64,") else {
        return Err("data URI must be base64 encoded (data:<type>;base64,...)".into());
    };
    if !payload.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) {
        return Err("data URI payload is not valid base64".into());
    }
    let padding = payload.bytes().rev().take_while(|b| *b == b'=').count();
    let bytes = (payload.len() / 4 * 3 + payload.len() % 4 * 3 / 4).saturating_sub(padding);
    if bytes > MAX_STYLE_IMAGE_BYTES {
        return Err(format!("image is {bytes} bytes; at most 5 MB ({MAX_STYLE_IMAGE_BYTES} bytes)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_style_image_url;

    #[test]
    fn style_image_urls() {
        assert!(check_style_image_url("https://example.com/a.png").is_ok());
        assert!(check_style_image_url("data:image/png;base64,iVBORw0KGgo=").is_ok());
        assert!(check_style_image_url("http://example.com/a.png").is_err());
        assert!(check_style_image_url("https:///a.png").is_err());
        assert!(check_style_image_url("data:image/png,raw").is_err());
        assert!(check_style_image_url("data:image/png;base64,@@@").is_err());
        let exactly = format!("data:image/png;base64,{}", "A".repeat(5 * 1024 * 1024 / 3 * 4));
        assert!(check_style_image_url(&exactly).is_ok());
        let over = format!("data:image/png;base64,{}", "A".repeat(5 * 1024 * 1024 / 3 * 4 + 8));
        assert!(check_style_image_url(&over).is_err());
    }
}
