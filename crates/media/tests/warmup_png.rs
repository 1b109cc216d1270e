//! The warm-up frame as a PNG: the test pattern dimmed, with the progress bar at 60 %.
//! With `DREAMGATE_DOCS=1` it is written to `docs/warmup-frame.png` (the README shows it).

use dreamgate_media::{bar_box, render_warmup, write_png, TestPattern};

#[test]
fn the_warmup_frame_is_written_as_a_png_of_the_streams_size() {
    let input = TestPattern::new(512, 512).frame(40);
    let frame = render_warmup(&input, 0.6);
    let dir = std::env::temp_dir().join(format!("dreamgate-warmup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("warmup-frame.png");
    write_png(&frame, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 512);
    assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), 512);
    // the bar's fill reaches 60 % of the way
    let (x0, y0, x1, y1) = bar_box(512, 512);
    let row = ((y0 + y1) / 2 * 512) as usize;
    let at = |x: u32| frame.y[row + x as usize];
    let split = x0 + ((x1 - x0) as f64 * 0.6) as u32;
    assert!(at(split - 3) > 200 && at(split + 3) < 60, "{} {}", at(split - 3), at(split + 3));
    if std::env::var("DREAMGATE_DOCS").as_deref() == Ok("1") {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/warmup-frame.png");
        std::fs::copy(&path, docs).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
