//! End-to-end behaviour of dreamgate-media: real OpenH264 encode/decode,
//! the stylizer, the pipeline and the file helpers.

use dreamgate_media::{
    contains_idr, nal_types, write_png, Frame, FrameProcessor, H264Decoder, H264Encoder, MediaError, Passthrough,
    Pipeline, Processed, Stylizer, TestPattern,
};
use dreamgate_model::StreamParams;
use serde_json::{json, Value};

const W: u32 = 512;
const H: u32 = 512;

/// Typed params from JSON; the similar-image filter is off unless the JSON says otherwise
/// (so that every frame is transformed).
fn params(v: Value) -> StreamParams {
    let mut p = StreamParams::from_json(&v).unwrap();
    p.enable_similar_image_filter.get_or_insert(false);
    p
}

fn stylize(params: &StreamParams, input: &Frame) -> Frame {
    let mut s = Stylizer::new();
    s.set_params(params);
    match s.process(input) {
        Processed::Frame(f) => f,
        Processed::Skipped => panic!("first frame cannot be skipped"),
    }
}

/// Sobel L1 magnitude of the luma at interior pixels.
fn edge_mask(f: &Frame, threshold: i32) -> Vec<bool> {
    let (w, h) = (f.width as usize, f.height as usize);
    let p = |x: usize, y: usize| f.y[y * w + x] as i32;
    let mut mask = vec![false; w * h];
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let gx = p(x + 1, y - 1) + 2 * p(x + 1, y) + p(x + 1, y + 1)
                - p(x - 1, y - 1)
                - 2 * p(x - 1, y)
                - p(x - 1, y + 1);
            let gy = p(x - 1, y + 1) + 2 * p(x, y + 1) + p(x + 1, y + 1)
                - p(x - 1, y - 1)
                - 2 * p(x, y - 1)
                - p(x + 1, y - 1);
            mask[y * w + x] = gx.abs() + gy.abs() > threshold;
        }
    }
    mask
}

fn mean_luma_where(f: &Frame, mask: &[bool], want: bool) -> f64 {
    let (sum, n) =
        f.y.iter().zip(mask).filter(|(_, &m)| m == want).fold((0u64, 0u64), |(s, n), (&y, _)| (s + y as u64, n + 1));
    sum as f64 / n as f64
}

#[test]
fn encode_decode_round_trip_preserves_the_picture() {
    let pattern = TestPattern::new(W, H);
    let mut enc = H264Encoder::new(W, H, 30).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let mut worst = f64::INFINITY;
    for i in 0..30 {
        let src = pattern.frame(i);
        let au = enc.encode(&src, false).unwrap();
        assert_eq!(au.keyframe, i == 0, "frame {i}");
        assert_eq!(&au.data[..4], &[0, 0, 0, 1], "Annex-B start code");
        let out = dec.decode(&au.data).unwrap().expect("baseline: one picture per access unit");
        assert_eq!((out.width, out.height), (W, H));
        worst = worst.min(out.psnr(&src).unwrap());
    }
    assert!(worst > 30.0, "worst PSNR {worst:.1} dB");
}

#[test]
fn odd_and_invalid_sizes_are_rejected_clearly() {
    for (w, h) in [(511, 512), (512, 511), (0, 512)] {
        let err = H264Encoder::new(w, h, 30).unwrap_err();
        assert!(matches!(err, MediaError::InvalidSize { .. }), "{err}");
        let err = Pipeline::new(w, h, 30, Box::new(Stylizer::new())).unwrap_err();
        assert!(err.to_string().contains(&format!("{w}x{h}")), "{err}");
    }
    let mut enc = H264Encoder::new(64, 64, 30).unwrap();
    let err = enc.encode(&Frame::new(128, 64), false).unwrap_err().to_string();
    assert!(err.contains("128x64") && err.contains("64x64"), "{err}");
    let broken = Frame { width: 64, height: 64, y: vec![0; 10], u: vec![], v: vec![] };
    assert!(matches!(enc.encode(&broken, false), Err(MediaError::MalformedFrame(_))));
}

#[test]
fn forced_keyframe_is_an_idr_with_parameter_sets() {
    let pattern = TestPattern::new(128, 128);
    let mut enc = H264Encoder::new(128, 128, 30).unwrap();
    let mut kinds = Vec::new();
    for i in 0..8 {
        let au = enc.encode(&pattern.frame(i), i == 5).unwrap();
        assert_eq!(au.keyframe, contains_idr(&au.data));
        kinds.push(au.keyframe);
        if i == 5 {
            let types = nal_types(&au.data);
            assert!(types.contains(&7) && types.contains(&8) && types.contains(&5), "{types:?}");
        }
    }
    assert_eq!(kinds, vec![true, false, false, false, false, true, false, false]);
}

#[test]
fn decoder_survives_a_stream_joined_mid_way_and_recovers_on_a_keyframe() {
    let pattern = TestPattern::new(128, 128);
    let mut enc = H264Encoder::new(128, 128, 30).unwrap();
    let units: Vec<_> = (0..6).map(|i| enc.encode(&pattern.frame(i), i == 4).unwrap()).collect();
    let mut dec = H264Decoder::new().unwrap();
    // P-frames without their IDR: no picture or an error, never a panic.
    for au in &units[1..4] {
        assert!(matches!(dec.decode(&au.data), Ok(None) | Err(MediaError::Decode(_))));
    }
    let recovered = dec.decode(&units[4].data).unwrap().expect("IDR decodes on its own");
    assert!(recovered.psnr(&pattern.frame(4)).unwrap() > 30.0);
    assert!(dec.decode(&units[5].data).unwrap().is_some());
}

#[test]
fn stylizer_is_deterministic() {
    let params = params(json!({"prompt": "cartoon magical dj blue sparkle", "seed": 42, "delta": 0.5,
        "controlnets": [{"model_id": "thibaud/controlnet-sd21-canny-diffusers", "preprocessor": "canny", "conditioning_scale": 0.6}]}));
    let pattern = TestPattern::new(W, H);
    let run = || {
        let mut s = Stylizer::new();
        s.set_params(&params);
        (0..5)
            .map(|i| match s.process(&pattern.frame(i)) {
                Processed::Frame(f) => f,
                Processed::Skipped => panic!("filter is off"),
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert!(a == b, "same input and params must give identical bytes");
    // Through the whole pipeline too: identical encoded bytes.
    let mut src = H264Encoder::new(W, H, 30).unwrap();
    let units: Vec<_> = (0..10).map(|i| src.encode(&pattern.frame(i), false).unwrap().data).collect();
    let encode_all = || {
        let mut p = Pipeline::new(W, H, 30, Box::new(Stylizer::new())).unwrap();
        p.set_params(&params);
        units.iter().map(|u| p.push(u).unwrap().unwrap().data).collect::<Vec<_>>()
    };
    assert!(encode_all() == encode_all());
}

#[test]
fn prompts_change_the_output_measurably() {
    let input = TestPattern::new(W, H).frame(10);
    let a = stylize(&params(json!({"prompt": "cartoon magical dj blue sparkle"})), &input);
    let b = stylize(&params(json!({"prompt": "a red dragon breathing fire"})), &input);
    let c = stylize(&params(json!({"prompt": "green forest at dawn"})), &input);
    for (x, y, name) in [(&a, &b, "blue/red"), (&a, &c, "blue/green"), (&b, &c, "red/green")] {
        let d = x.mean_abs_diff(y).unwrap();
        assert!(d > 8.0, "{name}: mean abs diff {d:.2}");
    }
    for out in [&a, &b, &c] {
        let d = out.mean_abs_diff(&input).unwrap();
        assert!(d > 10.0, "output too close to input: {d:.2}");
    }
}

#[test]
fn seed_changes_the_pattern() {
    let input = TestPattern::new(W, H).frame(3);
    let base = json!({"prompt": "gold coins"});
    let mut seeds = Vec::new();
    for seed in [1, 2, 3, 42, 1234] {
        let mut p = base.clone();
        p["seed"] = json!(seed);
        seeds.push(stylize(&params(p), &input));
    }
    for i in 0..seeds.len() {
        for j in i + 1..seeds.len() {
            let d = seeds[i].mean_abs_diff(&seeds[j]).unwrap();
            assert!(d > 1.0, "seeds #{i} and #{j}: {d:.2}");
        }
    }
}

#[test]
fn edge_emphasis_follows_the_controlnet_scale() {
    let input = TestPattern::new(W, H).frame(7);
    let edges = edge_mask(&input, 200);
    assert!(edges.iter().filter(|&&e| e).count() > 1000);
    let with_scale = |scale: f64| {
        stylize(
            &params(json!({"prompt": "pastel", "controlnets": [{"model_id": "thibaud/controlnet-sd21-canny-diffusers",
                "preprocessor": "canny", "conditioning_scale": scale, "preprocessor_params": {"low_threshold": 100, "high_threshold": 200}}]})),
            &input,
        )
    };
    let outs: Vec<Frame> = [0.0, 0.5, 1.0].iter().map(|&s| with_scale(s)).collect();
    let on_edges: Vec<f64> = outs.iter().map(|f| mean_luma_where(f, &edges, true)).collect();
    let off_edges: Vec<f64> = outs.iter().map(|f| mean_luma_where(f, &edges, false)).collect();
    assert!(
        on_edges[0] - on_edges[1] > 10.0 && on_edges[1] - on_edges[2] > 10.0 && on_edges[2] > 16.5,
        "edge luma {on_edges:?}"
    );
    // Flat areas barely change.
    assert!((off_edges[0] - off_edges[2]).abs() < 3.0, "flat luma {off_edges:?}");
    // A disabled ControlNet has no effect.
    let disabled = stylize(
        &params(
            json!({"prompt": "pastel", "controlnets": [{"model_id": "x-canny", "preprocessor": "canny", "conditioning_scale": 1.0, "enabled": false}]}),
        ),
        &input,
    );
    assert_eq!(disabled, outs[0]);
}

#[test]
fn prompt_change_shows_within_a_few_frames_in_the_pipeline() {
    let pattern = TestPattern::new(W, H);
    let mut src = H264Encoder::new(W, H, 30).unwrap();
    let units: Vec<_> = (0..12).map(|i| src.encode(&pattern.frame(i), false).unwrap().data).collect();
    let first = params(json!({"prompt": "cartoon magical dj blue sparkle", "delta": 0.3}));
    let mut control = Pipeline::new(W, H, 30, Box::new(Stylizer::new())).unwrap();
    let mut changed = Pipeline::new(W, H, 30, Box::new(Stylizer::new())).unwrap();
    control.set_params(&first);
    changed.set_params(&first);
    for (i, unit) in units.iter().enumerate() {
        if i == 6 {
            // the stream's whole params after a PATCH of the prompt (as the engine passes them)
            changed.set_params(&StreamParams { prompt: Some("a red dragon breathing fire".into()), ..first.clone() });
        }
        control.push(unit).unwrap();
        changed.push(unit).unwrap();
        let diff = control.last_output().unwrap().mean_abs_diff(changed.last_output().unwrap()).unwrap();
        if i < 6 {
            assert_eq!(diff, 0.0);
        } else if i >= 8 {
            assert!(diff > 8.0, "frame {i}: {diff:.2}");
        }
    }
    let s = control.stats();
    assert_eq!((s.units_in, s.frames_decoded, s.frames_out, s.decode_errors), (12, 12, 12, 0));
    assert_eq!(s.recent.samples, 12);
    assert!(s.recent.total_p95 >= s.recent.total_p50);
}

#[test]
fn pipeline_scales_any_input_to_the_stream_size() {
    let (iw, ih) = (640, 480);
    let mut src = H264Encoder::new(iw, ih, 30).unwrap();
    let mut p = Pipeline::new(W, H, 30, Box::new(Passthrough)).unwrap();
    let mut dec = H264Decoder::new().unwrap();
    let input = TestPattern::new(iw, ih).frame(0);
    let out = p.push(&src.encode(&input, false).unwrap().data).unwrap().unwrap();
    assert!(out.keyframe);
    let frame = dec.decode(&out.data).unwrap().unwrap();
    assert_eq!((frame.width, frame.height), (W, H));
    // Cover: the 480x480 centre of the input, scaled up.
    let expected = dreamgate_media::scale_cover(&input, W, H);
    assert!(frame.psnr(&expected).unwrap() > 28.0);
}

#[test]
fn similar_image_filter_skips_repeats_and_pipeline_keeps_output_flowing() {
    let mut src = H264Encoder::new(128, 128, 30).unwrap();
    let still = TestPattern::new(128, 128).frame(0);
    let units: Vec<_> = (0..8).map(|_| src.encode(&still, false).unwrap().data).collect();
    let mut p = Pipeline::new(128, 128, 30, Box::new(Stylizer::new())).unwrap();
    let filtered = params(json!({"enable_similar_image_filter": true, "similar_image_filter_threshold": 0.98,
        "similar_image_filter_max_skip_frame": 2}));
    p.set_params(&filtered);
    let mut skipped = Vec::new();
    for u in &units {
        assert!(p.push(u).unwrap().is_some(), "a skipped frame still yields output");
        skipped.push(p.stats().last.unwrap().skipped);
    }
    assert_eq!(skipped, vec![false, true, true, false, true, true, false, true]);
    assert_eq!(p.stats().frames_skipped, 5);
    // Turning the filter off processes every frame.
    p.set_params(&StreamParams { enable_similar_image_filter: Some(false), ..filtered });
    p.push(&units[0]).unwrap();
    assert!(!p.stats().last.unwrap().skipped);
}

#[test]
fn pipeline_request_keyframe_makes_the_next_output_an_idr() {
    let pattern = TestPattern::new(128, 128);
    let mut src = H264Encoder::new(128, 128, 30).unwrap();
    let mut p = Pipeline::new(128, 128, 30, Box::new(Stylizer::new())).unwrap();
    let mut keys = Vec::new();
    for i in 0..6 {
        if i == 3 {
            p.request_keyframe();
        }
        let out = p.push(&src.encode(&pattern.frame(i), false).unwrap().data).unwrap().unwrap();
        keys.push(out.keyframe);
    }
    assert_eq!(keys, vec![true, false, false, true, false, false]);
    assert_eq!(p.stats().keyframes_out, 2);
    // Garbage input yields no output (an error is counted), and the pipeline
    // recovers at the publisher's next keyframe.
    let before = p.stats();
    match p.push(&[0, 0, 0, 1, 0x41, 0xde, 0xad]) {
        Ok(None) => assert_eq!(p.stats().decode_errors, before.decode_errors),
        Err(MediaError::Decode(_)) => assert_eq!(p.stats().decode_errors, before.decode_errors + 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.stats().frames_out, before.frames_out);
    let out = p.push(&src.encode(&pattern.frame(6), true).unwrap().data).unwrap();
    assert!(out.is_some());
}

#[test]
fn out_of_range_params_never_panic() {
    let input = TestPattern::new(64, 64).frame(0);
    let mut s = Stylizer::new();
    let nan = StreamParams { guidance_scale: Some(f64::NAN), delta: Some(f64::INFINITY), ..StreamParams::default() };
    for params in [
        StreamParams::default(),
        nan,
        params(json!({"prompt": "", "seed": -5, "t_index_list": [-1, 9999], "num_inference_steps": 0})),
        params(
            json!({"controlnets": [{}, {"conditioning_scale": -3}, {"model_id": "depth", "conditioning_scale": 1e308}]}),
        ),
        params(json!({"guidance_scale": -1e9, "delta": 1e9, "similar_image_filter_max_skip_frame": -1})),
        params(json!({"prompt": [["", 0], ["x", -3]], "seed": [], "width": -1})),
    ] {
        s.set_params(&params);
        assert!(matches!(s.process(&input), Processed::Frame(_) | Processed::Skipped));
    }
}

#[test]
fn skip_diffusion_passes_frames_through() {
    let input = TestPattern::new(64, 64).frame(2);
    assert_eq!(stylize(&params(json!({"skip_diffusion": true, "prompt": "red"})), &input), input);
}

#[test]
fn png_is_readable_and_has_the_right_colours() {
    let dir = std::env::temp_dir().join(format!("dreamgate-media-png-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pattern.png");
    let frame = TestPattern::new(96, 64).frame(0);
    write_png(&frame, &path).unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height, info.color_type), (96, 64, png::ColorType::Rgb));
    // The counter strip at frame 0 is black; the first bar below it is near white.
    assert!(buf[..3].iter().all(|&c| c < 20), "{:?}", &buf[..3]);
    let row = 10 * 96 * 3;
    assert!(buf[row..row + 3].iter().all(|&c| c > 200), "{:?}", &buf[row..row + 3]);
    let err = write_png(&frame, dir.join("missing-dir").join("x.png")).unwrap_err();
    assert!(matches!(err, MediaError::Io { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn y4m_file_round_trip_and_missing_file() {
    let dir = std::env::temp_dir().join(format!("dreamgate-media-y4m-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clip.y4m");
    let frames: Vec<Frame> = (0..4).map(|i| TestPattern::new(64, 48).frame(i)).collect();
    let mut file = std::fs::File::create(&path).unwrap();
    dreamgate_media::write_y4m(&mut file, &frames, 25).unwrap();
    drop(file);
    let reader = dreamgate_media::Y4mReader::open(&path).unwrap();
    assert_eq!((reader.width(), reader.height(), reader.fps()), (64, 48, Some((25, 1))));
    let read: Vec<Frame> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(read, frames);
    let err = dreamgate_media::Y4mReader::open(dir.join("nope.y4m")).unwrap_err();
    assert!(matches!(err, MediaError::Io { .. }) && err.to_string().contains("nope.y4m"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pipeline_and_processors_can_move_to_a_media_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Pipeline>();
    assert_send::<Stylizer>();
    assert_send::<H264Encoder>();
    assert_send::<H264Decoder>();
}
