//! The little SDP reading str0m does not expose: which m-line is the H.264 video, turning
//! audio m-lines inactive before str0m answers, and trickled `a=candidate:` lines.

use str0m::Candidate;

use crate::RtcError;

/// One m-section of an SDP, as far as we care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    /// `audio`, `video`, `application`, ...
    pub kind: String,
    /// Port of the m-line (0 = rejected, unless bundled).
    pub port: u16,
    /// `a=mid:` value.
    pub mid: Option<String>,
    /// Codec names from `a=rtpmap:` lines, upper-cased (`H264`, `VP8`, ...).
    pub codecs: Vec<String>,
}

impl Section {
    /// Whether this is a video m-line offering H.264.
    pub fn is_h264_video(&self) -> bool {
        self.kind == "video" && self.codecs.iter().any(|c| c == "H264")
    }
}

/// Splits an SDP into its m-sections. Rejects text that does not look like an SDP at all.
pub(crate) fn sections(sdp: &str) -> Result<Vec<Section>, RtcError> {
    if !sdp.trim_start().starts_with("v=0") {
        return Err(RtcError::BadSdp("SDP must start with v=0".into()));
    }
    let mut out: Vec<Section> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
            let port = parts
                .next()
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| RtcError::BadSdp(format!("bad m-line: {line}")))?;
            out.push(Section { kind, port, mid: None, codecs: Vec::new() });
        } else if let Some(section) = out.last_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                section.mid = Some(mid.trim().to_string());
            } else if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
                // a=rtpmap:<pt> <name>/<clock>[/<channels>]
                if let Some(name) = rtpmap.split_whitespace().nth(1).and_then(|enc| enc.split('/').next()) {
                    section.codecs.push(name.to_ascii_uppercase());
                }
            }
        }
    }
    Ok(out)
}

/// Rewrites every audio m-section of `sdp` to `a=inactive`, so that str0m answers those
/// m-lines inactive: we take video only. The attribute goes at the end of the section
/// (`c=`/`b=` lines must stay right after `m=`). Line endings are normalised to CRLF.
pub(crate) fn deactivate_audio(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len() + 32);
    let mut in_audio = false;
    for line in sdp.lines().map(str::trim_end) {
        if line.is_empty() {
            continue;
        }
        if let Some(m) = line.strip_prefix("m=") {
            if in_audio {
                out.push_str("a=inactive\r\n");
            }
            in_audio = m.starts_with("audio ");
        } else if in_audio && matches!(line, "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if in_audio {
        out.push_str("a=inactive\r\n");
    }
    out
}

/// Parses the `a=candidate:` lines of a trickle-ICE SDP fragment (RFC 8840). Other lines
/// (`a=ice-ufrag`, `m=`, `a=mid`, `a=end-of-candidates`) are ignored.
pub(crate) fn candidates(sdpfrag: &str) -> Result<Vec<Candidate>, RtcError> {
    sdpfrag
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .map(|l| Candidate::from_sdp_string(l).map_err(|e| RtcError::BadCandidate(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=mid:0\r\n\
a=sendrecv\r\n\
a=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\n\
a=mid:1\r\n\
a=sendonly\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:102 H264/90000\r\n";

    #[test]
    fn finds_sections_and_codecs() {
        let s = sections(OFFER).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, "audio");
        assert_eq!(s[0].mid.as_deref(), Some("0"));
        assert!(!s[0].is_h264_video());
        assert_eq!(s[1].codecs, vec!["VP8", "H264"]);
        assert_eq!(s[1].port, 9);
        assert!(s[1].is_h264_video());
    }

    #[test]
    fn rejects_non_sdp() {
        assert!(matches!(sections("hello"), Err(RtcError::BadSdp(_))));
        assert!(matches!(sections("v=0\r\nm=video x\r\n"), Err(RtcError::BadSdp(_))));
    }

    #[test]
    fn audio_becomes_inactive_video_untouched() {
        let out = deactivate_audio(OFFER);
        let audio: Vec<&str> =
            out.split("m=video").next().unwrap().lines().filter(|l| l.starts_with("a=") && l.len() < 12).collect();
        assert!(audio.contains(&"a=inactive"));
        assert!(!audio.contains(&"a=sendrecv"));
        let video = out.split("m=video").nth(1).unwrap();
        assert!(video.contains("a=sendonly\r\n"));
        assert!(!video.contains("a=inactive"));
        assert!(out.lines().all(|l| !l.is_empty()));
        // Audio as the last section too, and c= stays right after m=.
        let last = deactivate_audio("v=0\r\nm=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\n");
        assert_eq!(last, "v=0\r\nm=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\n");
    }

    #[test]
    fn parses_trickled_candidates() {
        let frag = "a=ice-ufrag:abcd\r\na=ice-pwd:efgh\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n\
a=candidate:2 1 udp 1694498815 192.0.2.7 50001 typ srflx raddr 127.0.0.1 rport 50000\r\n\
a=end-of-candidates\r\n";
        let c = candidates(frag).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].addr(), "127.0.0.1:50000".parse().unwrap());
        assert!(candidates("a=end-of-candidates\r\n").unwrap().is_empty());
        assert!(matches!(candidates("a=candidate:garbage"), Err(RtcError::BadCandidate(_))));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// SDP-looking text: real attribute lines, candidate lines with random fields,
        /// and arbitrary lines, joined by CRLF or LF.
        fn sdp_text() -> impl Strategy<Value = String> {
            let line = prop_oneof![
                Just("v=0".to_owned()),
                Just("m=audio 9 UDP/TLS/RTP/SAVPF 111".to_owned()),
                Just("m=video 9 UDP/TLS/RTP/SAVPF 96".to_owned()),
                "m=[a-z]{0,6} [0-9/]{0,7}( [A-Z/]{0,8})?",
                Just("a=sendrecv".to_owned()),
                Just("a=rtpmap:96 H264/90000".to_owned()),
                "a=rtpmap:[0-9]{0,3} ?[A-Za-z0-9/]{0,10}",
                "a=mid:\\PC{0,4}",
                Just("a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host".to_owned()),
                "a=candidate:[0-9a-z]{0,4} [0-9]{0,2} (udp|tcp|UDP|x) [0-9]{0,11} [0-9a-f.:]{0,16} [0-9]{0,6} typ (host|srflx|relay|x)( raddr [0-9.]{0,15} rport [0-9]{0,6})?",
                Just("a=end-of-candidates".to_owned()),
                "\\PC{0,30}",
            ];
            (proptest::collection::vec(line, 0..12), any::<bool>())
                .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }))
        }

        proptest! {
            // Offers and trickle fragments come from any client: never a panic.
            // PROPTEST_CASES=100000 for a long run.
            #[test]
            fn trickled_candidates_parse_or_fail_cleanly(frag in sdp_text()) {
                let lines = frag.lines().map(str::trim).filter(|l| l.starts_with("a=candidate:")).count();
                match candidates(&frag) {
                    Ok(found) => prop_assert_eq!(found.len(), lines),
                    Err(e) => prop_assert!(matches!(e, RtcError::BadCandidate(_))),
                }
            }

            #[test]
            fn sections_and_deactivation_keep_their_shape(sdp in sdp_text()) {
                if let Ok(found) = sections(&sdp) {
                    prop_assert_eq!(found.len(), sdp.lines().filter(|l| l.starts_with("m=")).count());
                    for s in &found {
                        prop_assert!(s.codecs.iter().all(|c| *c == c.to_ascii_uppercase()));
                    }
                }
                let out = deactivate_audio(&sdp);
                prop_assert!(out.is_empty() || out.ends_with("\r\n"));
                prop_assert!(out.split_terminator("\r\n").all(|l| !l.is_empty()));
                // No audio section keeps a direction other than inactive.
                let mut audio: Vec<Vec<&str>> = Vec::new();
                let mut in_audio = false;
                for l in out.lines() {
                    if let Some(m) = l.strip_prefix("m=") {
                        in_audio = m.starts_with("audio ");
                        if in_audio {
                            audio.push(Vec::new());
                        }
                    } else if in_audio {
                        audio.last_mut().expect("inside an audio section").push(l);
                    }
                }
                for section in audio {
                    prop_assert!(section.iter().all(|l| !matches!(*l, "a=sendrecv" | "a=sendonly" | "a=recvonly")));
                    prop_assert!(section.contains(&"a=inactive"));
                }
            }
        }
    }
}
