//! The built-in frame transform: a deterministic, parameter-driven image
//! stylisation. **This is not diffusion** — it is a cheap stand-in that
//! reacts visibly to every live StreamDiffusion parameter so the whole
//! system can be exercised end to end without a GPU:
//!
//! | parameter | effect |
//! |---|---|
//! | `prompt` (weighted list: blended) | a 4-colour palette (hash of the text; colour words such as "blue" or "gold" pick the base hue) used for posterised tone mapping |
//! | `seed` (largest weight wins) | the halftone pattern (Bayer dots, diagonal lines, crosshatch, round dots, scanlines), its offset and orientation |
//! | `t_index_list` / `num_inference_steps` | strength: how much of the toned image replaces the input (lower first index = stronger) |
//! | `guidance_scale` | palette saturation |
//! | `delta` | temporal blending with the previous output (lower delta = more trail) |
//! | canny / hed / soft-edge ControlNet scale | strength of dark Sobel edge lines (canny thresholds apply) |
//! | depth / openpose ControlNet scale | contrast |
//! | color ControlNet scale | how much of the input's own colour survives |
//! | TemporalNet ControlNet scale | more temporal blending |
//! | `skip_diffusion` | frames pass through untouched |
//! | `enable_similar_image_filter` & co. | see [`crate::similar`] |
//!
//! Same input and parameters give byte-identical output (no randomness, no
//! clock). All per-pixel work is integer arithmetic over reused buffers.

use dreamgate_model::defaults::CANNY_THRESHOLDS;
use dreamgate_model::StreamParams;

use crate::color::{clamp_u8, hsv_to_rgb, rgb_to_yuv};
use crate::params::{ControlKind, StyleParams};
use crate::similar::SimilarImageFilter;
use crate::{Frame, FrameProcessor, Processed};

/// Amplitude of the halftone pattern in luma steps (bands are ~85 wide).
const PATTERN_AMPLITUDE: f32 = 30.0;
const TILE: usize = 16;

/// The default [`FrameProcessor`]: see the [module docs](self) for what each
/// parameter does.
///
/// ```
/// use dreamgate_media::{Frame, FrameProcessor, Processed, Stylizer, TestPattern};
/// let mut s = Stylizer::new();
/// let params = dreamgate_model::StreamParams::from_json(&serde_json::json!({ "prompt": "golden hour", "seed": 3 }));
/// s.set_params(&params.unwrap());
/// let input = TestPattern::new(64, 64).frame(0);
/// let Processed::Frame(out) = s.process(&input) else { unreachable!() };
/// assert_eq!((out.width, out.height), (64, 64));
/// assert_ne!(out, input);
/// ```
pub struct Stylizer {
    params: StyleParams,
    look: Look,
    filter: SimilarImageFilter,
    prev: Option<Frame>,
    spare: Option<Frame>,
    dither: Vec<u8>,
    edges: Vec<u8>,
    pattern_rows: Vec<i16>,
    pattern_width: usize,
}

impl std::fmt::Debug for Stylizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stylizer").field("params", &self.params).field("palette", &self.look.palette).finish()
    }
}

/// Tables derived from the parameters (rebuilt on `set_params`).
struct Look {
    palette: [[u8; 3]; 4],
    tone_y: [u8; 256],
    tone_u: [u8; 256],
    tone_v: [u8; 256],
    contrast: [u8; 256],
    tile: [[i16; TILE]; TILE],
    /// 0..=256: share of the toned luma.
    strength: u32,
    /// 0..=256: share of the palette chroma.
    chroma_strength: u32,
    /// 0..=512: ink per unit of edge response (/512: scale 1 darkens strong edges by half).
    edge_gain: u32,
    edge_low: i32,
    /// 255 * 256 / (high - low).
    edge_scale: i32,
    /// 0..=256: share of the previous output.
    feedback: u32,
    passthrough: bool,
}

impl Default for Stylizer {
    fn default() -> Self {
        Stylizer::new()
    }
}

impl Stylizer {
    /// A stylizer with the spec's default parameters (the model's defaults).
    pub fn new() -> Stylizer {
        Stylizer::with_params(StyleParams::default())
    }

    /// A stylizer with the given parameters.
    pub fn with_params(params: StyleParams) -> Stylizer {
        let look = Look::from_params(&params);
        Stylizer {
            filter: SimilarImageFilter::new(params.filter),
            params,
            look,
            prev: None,
            spare: None,
            dither: Vec::new(),
            edges: Vec::new(),
            pattern_rows: Vec::new(),
            pattern_width: 0,
        }
    }

    /// The parameters in effect.
    pub fn params(&self) -> &StyleParams {
        &self.params
    }

    /// The current palette, darkest first, as RGB.
    pub fn palette(&self) -> [[u8; 3]; 4] {
        self.look.palette
    }

    fn build_pattern_rows(&mut self, width: usize) {
        if self.pattern_width == width && self.pattern_rows.len() == width * TILE {
            return;
        }
        self.pattern_rows.clear();
        for row in &self.look.tile {
            self.pattern_rows.extend((0..width).map(|x| row[x % TILE]));
        }
        self.pattern_width = width;
    }

    fn render(&mut self, input: &Frame, out: &mut Frame) {
        let (w, h) = (input.width as usize, input.height as usize);
        out.reshape(input.width, input.height);
        self.build_pattern_rows(w);
        let look = &self.look;
        self.dither.resize(w * h, 0);
        let use_edges = look.edge_gain > 0 && w >= 3 && h >= 3;
        if use_edges {
            sobel(&input.y, w, h, look.edge_low, look.edge_scale, &mut self.edges);
        }

        // Luma: contrast, halftone dither, palette tone, mix with the input, ink edges.
        let s = look.strength;
        for r in 0..h {
            let pattern = &self.pattern_rows[(r % TILE) * w..][..w];
            let src = &input.y[r * w..][..w];
            let dither = &mut self.dither[r * w..][..w];
            let dst = &mut out.y[r * w..][..w];
            for x in 0..w {
                let d = clamp_u8(look.contrast[src[x] as usize] as i32 + pattern[x] as i32);
                dither[x] = d;
                dst[x] = ((look.tone_y[d as usize] as u32 * s + src[x] as u32 * (256 - s) + 128) >> 8) as u8;
            }
            if use_edges {
                let ink_gain = look.edge_gain;
                for (o, &e) in dst.iter_mut().zip(&self.edges[r * w..][..w]) {
                    let ink = (e as u32 * ink_gain) >> 9;
                    let floor = (*o as u32).min(16);
                    *o = (*o as u32).saturating_sub(ink).max(floor) as u8;
                }
            }
        }

        // Chroma: palette colour of the 2x2 block's dithered tone, mixed with the input.
        let (cw, ch) = (out.chroma_width(), out.chroma_height());
        let cs = look.chroma_strength;
        for cy in 0..ch {
            let r0 = &self.dither[(2 * cy) * w..][..w];
            let r1 = &self.dither[(2 * cy + 1).min(h - 1) * w..][..w];
            for cx in 0..cw {
                let (x0, x1) = (2 * cx, (2 * cx + 1).min(w - 1));
                let idx = ((r0[x0] as u32 + r0[x1] as u32 + r1[x0] as u32 + r1[x1] as u32 + 2) >> 2) as usize;
                let i = cy * cw + cx;
                out.u[i] = ((look.tone_u[idx] as u32 * cs + input.u[i] as u32 * (256 - cs) + 128) >> 8) as u8;
                out.v[i] = ((look.tone_v[idx] as u32 * cs + input.v[i] as u32 * (256 - cs) + 128) >> 8) as u8;
            }
        }

        // Temporal blend with the previous output.
        let a = look.feedback;
        if let Some(prev) = self.prev.as_ref().filter(|p| (p.width, p.height) == (out.width, out.height)) {
            if a > 0 {
                for (dst, src) in [(&mut out.y, &prev.y), (&mut out.u, &prev.u), (&mut out.v, &prev.v)] {
                    for (o, &p) in dst.iter_mut().zip(src.iter()) {
                        *o = ((*o as u32 * (256 - a) + p as u32 * a + 128) >> 8) as u8;
                    }
                }
            }
        }
    }
}

/// Edge response in 0..=255 from a 3x3 Sobel (L1 magnitude, as OpenCV's
/// Canny) mapped linearly between the low and high thresholds.
fn sobel(y: &[u8], w: usize, h: usize, low: i32, scale: i32, out: &mut Vec<u8>) {
    out.clear();
    out.resize(w * h, 0);
    for r in 1..h - 1 {
        let a = &y[(r - 1) * w..][..w];
        let b = &y[r * w..][..w];
        let c = &y[(r + 1) * w..][..w];
        let o = &mut out[r * w..][..w];
        for x in 1..w - 1 {
            let gx = (a[x + 1] as i32 + 2 * b[x + 1] as i32 + c[x + 1] as i32)
                - (a[x - 1] as i32 + 2 * b[x - 1] as i32 + c[x - 1] as i32);
            let gy = (c[x - 1] as i32 + 2 * c[x] as i32 + c[x + 1] as i32)
                - (a[x - 1] as i32 + 2 * a[x] as i32 + a[x + 1] as i32);
            let m = gx.abs() + gy.abs();
            o[x] = (((m - low) * scale) >> 8).clamp(0, 255) as u8;
        }
    }
}

/// FNV-1a, 64 bit: a stable hash (std's hasher is not guaranteed stable).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64 finaliser: spreads seeds so that nearby seeds look different.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hue (degrees) of colour words a prompt may contain.
const COLOUR_WORDS: &[(&str, f32)] = &[
    ("red", 0.0),
    ("crimson", 350.0),
    ("orange", 28.0),
    ("amber", 40.0),
    ("gold", 48.0),
    ("golden", 48.0),
    ("yellow", 58.0),
    ("lime", 90.0),
    ("green", 125.0),
    ("emerald", 145.0),
    ("teal", 175.0),
    ("cyan", 188.0),
    ("aqua", 185.0),
    ("blue", 222.0),
    ("navy", 230.0),
    ("indigo", 255.0),
    ("purple", 280.0),
    ("violet", 270.0),
    ("magenta", 305.0),
    ("pink", 330.0),
];

/// Palette (darkest first, RGB in 0..=1) for one prompt.
fn prompt_palette(prompt: &str) -> [[f32; 3]; 4] {
    let text = prompt.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let hash = fnv1a(&text);
    let named = text
        .split(|c: char| !c.is_alphanumeric())
        .find_map(|word| COLOUR_WORDS.iter().find(|(w, _)| *w == word).map(|&(_, hue)| hue));
    let jitter = ((hash >> 20) % 25) as f32 - 12.0;
    let base = named.map_or((hash % 360) as f32, |h| h + jitter);
    const SCHEMES: [[f32; 4]; 4] = [
        // darkest, mid (always the base hue), light, highlight
        [-20.0, 0.0, 20.0, 40.0],  // analogous
        [180.0, 0.0, 10.0, 180.0], // complementary
        [120.0, 0.0, 240.0, 60.0], // triadic
        [150.0, 0.0, 30.0, 210.0], // split
    ];
    const SV: [(f32, f32); 4] = [(0.85, 0.2), (0.9, 0.55), (0.8, 0.85), (0.3, 0.98)];
    let scheme = SCHEMES[((hash >> 9) % 4) as usize];
    std::array::from_fn(|i| {
        let (r, g, b) = hsv_to_rgb(base + scheme[i], SV[i].0, SV[i].1);
        [r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0]
    })
}

fn smoothstep(x: f32) -> f32 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// One entry of a 16x16 halftone tile in -1..=1.
fn pattern_value(kind: i64, x: usize, y: usize) -> f32 {
    const BAYER4: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];
    let tri = |v: usize, period: usize| {
        let p = (v % period) as f32 + 0.5;
        (p / period as f32 * 2.0 - 1.0).abs() * 2.0 - 1.0
    };
    match kind {
        0 => {
            // 8x8 Bayer from the 4x4 one.
            let b = 4 * BAYER4[y % 4][x % 4] + BAYER4[(y / 4) % 2 * 2][(x / 4) % 2 * 2] / 4;
            (b as f32 + 0.5) / 64.0 * 2.0 - 1.0
        }
        1 => tri(x + y, 8),
        2 => tri(x + y, 8).min(tri(x + TILE - y % TILE, 8)),
        3 => {
            let (dx, dy) = ((x % 8) as f32 - 3.5, (y % 8) as f32 - 3.5);
            ((dx * dx + dy * dy).sqrt() / 4.95) * 2.0 - 1.0
        }
        _ => tri(y, 4),
    }
}

impl Look {
    fn from_params(p: &StyleParams) -> Look {
        // Prompt palette: weighted blend of each prompt's palette.
        let total: f32 = p.prompts.iter().map(|(_, w)| *w).sum();
        let mut pal = [[0f32; 3]; 4];
        for (text, weight) in &p.prompts {
            let share = if total > 0.0 { weight / total } else { 1.0 / p.prompts.len() as f32 };
            for (acc, c) in pal.iter_mut().zip(prompt_palette(text)) {
                for k in 0..3 {
                    acc[k] += c[k] * share;
                }
            }
        }
        let palette: [[u8; 3]; 4] = pal.map(|c| c.map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8));
        let pal_yuv = palette.map(|[r, g, b]| rgb_to_yuv(r, g, b));

        // Guidance -> saturation of the palette's chroma.
        let sat = (0.6 + 0.4 * p.guidance_scale).clamp(0.3, 2.0);
        let mut tone_y = [0u8; 256];
        let mut tone_u = [0u8; 256];
        let mut tone_v = [0u8; 256];
        for v in 0..256 {
            let t = v as f32 / 255.0 * 3.0;
            let k = (t.floor() as usize).min(2);
            // Posterise: hold each colour, switch over a narrow band.
            let mix = smoothstep((t - k as f32 - 0.5) / 0.18 + 0.5);
            let (a, b) = (pal_yuv[k], pal_yuv[k + 1]);
            let lerp = |x: u8, y: u8| x as f32 + (y as f32 - x as f32) * mix;
            tone_y[v] = lerp(a.0, b.0).round() as u8;
            tone_u[v] = (128.0 + (lerp(a.1, b.1) - 128.0) * sat).round().clamp(16.0, 240.0) as u8;
            tone_v[v] = (128.0 + (lerp(a.2, b.2) - 128.0) * sat).round().clamp(16.0, 240.0) as u8;
        }

        // Depth / pose -> contrast (after stretching limited range to full).
        let contrast_gain = 1.0 + 0.35 * p.control(&[ControlKind::Depth, ControlKind::Pose]).min(2.0);
        let contrast = std::array::from_fn(|v| {
            let full = (v as f32 - 16.0) * 255.0 / 219.0;
            (128.0 + (full - 128.0) * contrast_gain).round().clamp(0.0, 255.0) as u8
        });

        // Seed -> halftone kind and offset.
        let mix = splitmix64(p.main_seed() as u64);
        let kind = (mix % 5) as i64;
        let (ox, oy) = (((mix >> 8) % 8) as usize, ((mix >> 16) % 8) as usize);
        let transpose = (mix >> 24) & 1 == 1;
        let tile = std::array::from_fn(|y| {
            std::array::from_fn(|x| {
                let (px, py) = if transpose { (y, x) } else { (x, y) };
                (pattern_value(kind, px + ox, py + oy) * PATTERN_AMPLITUDE).round() as i16
            })
        });

        let strength = (p.strength() * 256.0).round() as u32;
        let colour_keep = p.control(&[ControlKind::Color]).min(1.0);
        let edge = p.control(&[ControlKind::Canny, ControlKind::SoftEdge]).min(2.0);
        let (low, high) = p
            .controlnets
            .iter()
            .find(|c| matches!(c.kind, ControlKind::Canny | ControlKind::SoftEdge))
            .map_or((CANNY_THRESHOLDS.0 as f32, CANNY_THRESHOLDS.1 as f32), |c| c.thresholds);
        let temporal = p.control(&[ControlKind::Temporal]).min(1.0);
        let feedback = ((1.0 - p.delta).clamp(0.0, 1.0) * 0.6 + 0.3 * temporal).clamp(0.0, 0.85);

        Look {
            palette,
            tone_y,
            tone_u,
            tone_v,
            contrast,
            tile,
            strength: strength.min(256),
            chroma_strength: ((strength as f32 * (1.0 - 0.8 * colour_keep)).round() as u32).min(256),
            edge_gain: (edge * 256.0).round() as u32,
            edge_low: low.round() as i32,
            edge_scale: (255.0 * 256.0 / (high - low).max(1.0)).round() as i32,
            feedback: (feedback * 256.0).round() as u32,
            passthrough: p.skip_diffusion,
        }
    }
}

impl FrameProcessor for Stylizer {
    fn set_params(&mut self, params: &StreamParams) {
        self.params = StyleParams::from_params(params);
        self.look = Look::from_params(&self.params);
        self.filter.set_settings(self.params.filter);
        self.pattern_width = 0; // tile may have changed
    }

    fn process(&mut self, input: &Frame) -> Processed {
        if input.validate().is_err() {
            // Nothing to stylise; hand back what we got rather than panic.
            return Processed::Frame(input.clone());
        }
        if self.filter.should_skip(input) && self.prev.is_some() {
            return Processed::Skipped;
        }
        let mut out = self.spare.take().unwrap_or_else(|| Frame::new(input.width, input.height));
        if self.look.passthrough {
            out.copy_from(input);
        } else {
            self.render(input, &mut out);
        }
        match &mut self.prev {
            Some(prev) => prev.copy_from(&out),
            None => self.prev = Some(out.clone()),
        }
        Processed::Frame(out)
    }

    fn recycle(&mut self, frame: Frame) {
        self.spare = Some(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_words_pick_the_hue() {
        let blue = prompt_palette("cartoon magical dj blue sparkle");
        // the mid tones are bluish: blue channel dominates red
        assert!(blue[1][2] > blue[1][0], "{blue:?}");
        let red = prompt_palette("a red dragon");
        assert!(red[1][0] > red[1][2], "{red:?}");
        // whitespace and case do not matter
        assert_eq!(prompt_palette("A  Red dragon"), red);
    }

    #[test]
    fn tone_curve_is_posterised_and_monotonic_in_luma_within_bands() {
        let s = Stylizer::with_params(StyleParams::default());
        let ys = &s.look.tone_y;
        // Roughly four plateaus: count distinct values over the flat parts.
        let plateau = [ys[10], ys[85], ys[170], ys[250]];
        assert_eq!(ys[10], ys[30]);
        assert_eq!(ys[250], ys[240]);
        assert!(plateau.windows(2).all(|w| w[0] != w[1]), "{plateau:?}");
    }
}
