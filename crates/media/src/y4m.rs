//! Reading YUV4MPEG2 (`.y4m`) files.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::frame::chroma_size;
use crate::{Frame, MediaError};

const MAX_LINE: usize = 4096;
const MAX_DIMENSION: u32 = 16384;

/// Reads 8-bit 4:2:0 frames from a Y4M stream (`C420`, `C420jpeg`,
/// `C420mpeg2`, `C420paldv` or no `C` tag). Other layouts are rejected with
/// a clear [`MediaError::Y4m`].
///
/// ```no_run
/// use dreamgate_media::Y4mReader;
/// let reader = Y4mReader::open("clip.y4m")?;
/// println!("{}x{} at {:?} fps", reader.width(), reader.height(), reader.fps());
/// for frame in reader {
///     let frame = frame?;
///     # let _ = frame;
/// }
/// # Ok::<(), dreamgate_media::MediaError>(())
/// ```
#[derive(Debug)]
pub struct Y4mReader<R> {
    input: R,
    width: u32,
    height: u32,
    fps: Option<(u32, u32)>,
    frames_read: u64,
    done: bool,
}

fn bad(msg: impl Into<String>) -> MediaError {
    MediaError::Y4m(msg.into())
}

/// Reads one `\n`-terminated line (without the newline); `Ok(None)` at a clean EOF.
fn read_line<R: BufRead>(input: &mut R, what: &str) -> Result<Option<Vec<u8>>, MediaError> {
    let mut line = Vec::new();
    let n = input
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| bad(format!("reading {what}: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(bad(format!("{what} is not terminated by a newline (or longer than {MAX_LINE} bytes)")));
    }
    line.pop();
    Ok(Some(line))
}

impl Y4mReader<BufReader<File>> {
    /// Opens a file and parses its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MediaError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| MediaError::Io { path: path.to_owned(), source })?;
        Y4mReader::new(BufReader::new(file))
    }
}

impl<R: BufRead> Y4mReader<R> {
    /// Parses the stream header from any buffered reader.
    pub fn new(mut input: R) -> Result<Self, MediaError> {
        let line = read_line(&mut input, "the header")?.ok_or_else(|| bad("empty file (no YUV4MPEG2 header)"))?;
        let line = String::from_utf8(line).map_err(|_| bad("the header is not ASCII"))?;
        let mut tokens = line.split(' ').filter(|t| !t.is_empty());
        if tokens.next() != Some("YUV4MPEG2") {
            return Err(bad("not a Y4M file (missing the YUV4MPEG2 signature)"));
        }
        let (mut width, mut height, mut fps) = (None, None, None);
        for token in tokens {
            // The tag is the token's first character, which may be any character of
            // the (UTF-8) header: split after it, not after its first byte.
            let tag_len = token.chars().next().map_or(1, char::len_utf8);
            let (tag, value) = token.split_at(tag_len);
            match tag {
                "W" => width = Some(value.parse::<u32>().map_err(|_| bad(format!("bad width {value:?}")))?),
                "H" => height = Some(value.parse::<u32>().map_err(|_| bad(format!("bad height {value:?}")))?),
                "F" => {
                    let (n, d) = value.split_once(':').ok_or_else(|| bad(format!("bad frame rate {value:?}")))?;
                    let parsed = n.parse::<u32>().ok().zip(d.parse::<u32>().ok()).filter(|&(_, d)| d > 0);
                    fps = Some(parsed.ok_or_else(|| bad(format!("bad frame rate {value:?}")))?);
                }
                "C" if !matches!(value, "420" | "420jpeg" | "420mpeg2" | "420paldv") => {
                    return Err(bad(format!(
                        "unsupported colour space C{value} (only 8-bit 4:2:0: C420, C420jpeg, C420mpeg2, C420paldv)"
                    )));
                }
                // Interlacing, aspect ratio and extensions do not change the sample layout.
                _ => {}
            }
        }
        let width = width.ok_or_else(|| bad("header has no width (W)"))?;
        let height = height.ok_or_else(|| bad("header has no height (H)"))?;
        if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(bad(format!("unsupported size {width}x{height}")));
        }
        Ok(Y4mReader { input, width, height, fps, frames_read: 0, done: false })
    }

    /// Frame width.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Frame height.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Frame rate as numerator/denominator, when the header has one.
    pub fn fps(&self) -> Option<(u32, u32)> {
        self.fps
    }

    fn read_frame(&mut self) -> Result<Option<Frame>, MediaError> {
        let n = self.frames_read + 1;
        let Some(line) = read_line(&mut self.input, &format!("frame {n} header"))? else {
            return Ok(None);
        };
        if !line.starts_with(b"FRAME") {
            return Err(bad(format!(
                "frame {n}: expected FRAME, found {:?}",
                String::from_utf8_lossy(&line[..line.len().min(16)])
            )));
        }
        let (cw, ch) = chroma_size(self.width, self.height);
        let mut frame = Frame::new(self.width, self.height);
        let io = |e: std::io::Error| bad(format!("frame {n} is truncated: {e}"));
        self.input.read_exact(&mut frame.y).map_err(io)?;
        debug_assert_eq!(frame.u.len(), cw * ch);
        self.input.read_exact(&mut frame.u).map_err(io)?;
        self.input.read_exact(&mut frame.v).map_err(io)?;
        self.frames_read = n;
        Ok(Some(frame))
    }
}

impl<R: BufRead> Iterator for Y4mReader<R> {
    type Item = Result<Frame, MediaError>;

    /// The next frame; after an error the iterator ends.
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.read_frame().transpose();
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }
}

/// Writes frames as a Y4M stream (`C420jpeg`), e.g. to make test files.
pub fn write_y4m(out: &mut impl std::io::Write, frames: &[Frame], fps: u32) -> std::io::Result<()> {
    let Some(first) = frames.first() else { return Ok(()) };
    writeln!(out, "YUV4MPEG2 W{} H{} F{}:1 Ip A1:1 C420jpeg", first.width, first.height, fps)?;
    for f in frames {
        out.write_all(b"FRAME\n")?;
        out.write_all(&f.y)?;
        out.write_all(&f.u)?;
        out.write_all(&f.v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Vec<Frame>, MediaError> {
        Y4mReader::new(bytes)?.collect()
    }

    #[test]
    fn reads_generated_frames_with_any_420_tag() {
        let frames: Vec<Frame> = (0..3).map(|i| crate::TestPattern::new(6, 4).frame(i)).collect();
        let mut bytes = Vec::new();
        write_y4m(&mut bytes, &frames, 30).unwrap();
        assert_eq!(parse(&bytes).unwrap(), frames);
        let reader = Y4mReader::new(&bytes[..]).unwrap();
        assert_eq!((reader.width(), reader.height(), reader.fps()), (6, 4, Some((30, 1))));
        for tag in ["C420", "C420mpeg2", "C420paldv", ""] {
            let text = String::from_utf8_lossy(&bytes).replacen("C420jpeg", tag, 1);
            let body = &bytes[bytes.iter().position(|&b| b == b'\n').unwrap()..];
            let header = text.lines().next().unwrap().to_owned();
            let mut b = header.into_bytes();
            b.extend_from_slice(body);
            assert_eq!(parse(&b).unwrap().len(), 3, "tag {tag:?}");
        }
        // frame parameters after FRAME are allowed; odd sizes round chroma up
        let mut odd = b"YUV4MPEG2 W3 H3 F25:1\nFRAME Ixyz\n".to_vec();
        odd.extend_from_slice(&[1; 9 + 4 + 4]);
        let f = parse(&odd).unwrap();
        assert_eq!((f[0].width, f[0].u.len()), (3, 4));
    }

    #[test]
    fn malformed_files_give_clear_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty file"),
            (b"RIFF1234\n", "missing the YUV4MPEG2 signature"),
            (b"YUV4MPEG2 W4 H4 C444\n", "unsupported colour space C444"),
            (b"YUV4MPEG2 W4 H4 C420p10\n", "unsupported colour space C420p10"),
            (b"YUV4MPEG2 H4\n", "no width"),
            (b"YUV4MPEG2 W4 Hx\n", "bad height"),
            (b"YUV4MPEG2 W4 H4 F30\n", "bad frame rate"),
            (b"YUV4MPEG2 W0 H4\n", "unsupported size 0x4"),
            (b"YUV4MPEG2 W4 H4", "not terminated"),
            (b"YUV4MPEG2 W4 H4\nFRAME\n\x01\x02", "frame 1 is truncated"),
            (b"YUV4MPEG2 W2 H2\nFRAME\n123456FRAMX\n", "frame 2: expected FRAME"),
        ];
        for (bytes, expected) in cases {
            let err = parse(bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{:?}: got {err:?}", String::from_utf8_lossy(bytes));
            assert!(err.starts_with("Y4M: "), "{err}");
        }
    }

    #[test]
    fn a_non_ascii_tag_is_ignored_not_a_panic() {
        // Found by the property test below: `split_at(1)` inside a multi-byte character.
        let reader = Y4mReader::new(&"YUV4MPEG2 W2 H2 \u{e9}x\n".as_bytes()[..]).unwrap();
        assert_eq!((reader.width(), reader.height()), (2, 2));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// A header line built from Y4M-looking tokens and arbitrary text.
        fn header() -> impl Strategy<Value = Vec<u8>> {
            let token = prop_oneof![
                (0u32..40).prop_map(|n| format!("W{n}")),
                (0u32..40).prop_map(|n| format!("H{n}")),
                "[FCIAX][0-9a-z:]{0,8}",
                "\\PC{0,6}",
            ];
            (proptest::bool::ANY, proptest::collection::vec(token, 0..8)).prop_map(|(sig, toks)| {
                let mut line = if sig { "YUV4MPEG2".to_owned() } else { String::new() };
                for t in toks {
                    line.push(' ');
                    line.push_str(&t);
                }
                line.push('\n');
                line.into_bytes()
            })
        }

        proptest! {
            // Outside input (`dreamgate ingest --input clip.y4m`): any bytes are an error or
            // frames of the header's size, never a panic. PROPTEST_CASES=100000 for a long run.
            #[test]
            fn any_bytes_are_frames_or_an_error(head in header(), body in proptest::collection::vec(any::<u8>(), 0..600)) {
                let mut bytes = head;
                bytes.extend_from_slice(&body);
                if let Ok(reader) = Y4mReader::new(&bytes[..]) {
                    let (w, h) = (reader.width(), reader.height());
                    for frame in reader.take(8) {
                        match frame {
                            Ok(f) => prop_assert_eq!((f.width, f.height), (w, h)),
                            Err(e) => prop_assert!(e.to_string().starts_with("Y4M: ")),
                        }
                    }
                }
            }

            #[test]
            fn raw_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                if let Ok(reader) = Y4mReader::new(&bytes[..]) {
                    for frame in reader.take(4) {
                        let _ = frame;
                    }
                }
            }
        }
    }

    #[test]
    fn iteration_stops_after_an_error() {
        let mut reader = Y4mReader::new(&b"YUV4MPEG2 W2 H2\nFRAME\n123456FRAME\n12"[..]).unwrap();
        assert!(reader.next().unwrap().is_ok());
        assert!(reader.next().unwrap().is_err());
        assert!(reader.next().is_none());
    }
}
