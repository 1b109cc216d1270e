//! Trickle ICE SDP fragments (`application/trickle-ice-sdpfrag`, RFC 8840),
//! built from the offer's ICE credentials and first media section.

/// What a trickle PATCH needs from the local offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OfferIce {
    ufrag: Option<String>,
    pwd: Option<String>,
    m_line: Option<String>,
    mid: Option<String>,
}

impl OfferIce {
    /// Reads ICE credentials (session or first media level), the first `m=`
    /// line and its `a=mid`.
    pub(crate) fn from_offer(sdp: &str) -> Self {
        let mut ice = Self::default();
        for line in sdp.lines().map(str::trim_end) {
            if line.starts_with("m=") {
                if ice.m_line.is_some() {
                    break; // bundled: the first media section is enough
                }
                ice.m_line = Some(line.to_owned());
            } else if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                ice.ufrag.get_or_insert_with(|| v.to_owned());
            } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
                ice.pwd.get_or_insert_with(|| v.to_owned());
            } else if let Some(v) = line.strip_prefix("a=mid:") {
                if ice.m_line.is_some() {
                    ice.mid.get_or_insert_with(|| v.to_owned());
                }
            }
        }
        ice
    }

    /// The fragment carrying `candidates` (with or without the `a=` prefix),
    /// plus `a=end-of-candidates` when `end` is set.
    pub(crate) fn fragment(&self, candidates: &[String], end: bool) -> String {
        let mut out = String::new();
        let mut line = |l: &str| {
            out.push_str(l);
            out.push_str("\r\n");
        };
        if let Some(u) = &self.ufrag {
            line(&format!("a=ice-ufrag:{u}"));
        }
        if let Some(p) = &self.pwd {
            line(&format!("a=ice-pwd:{p}"));
        }
        if let Some(m) = &self.m_line {
            line(m);
        }
        if let Some(mid) = &self.mid {
            line(&format!("a=mid:{mid}"));
        }
        for c in candidates {
            let c = c.trim();
            let c = c.strip_prefix("a=").unwrap_or(c);
            line(&format!("a={c}"));
        }
        if end {
            line("a=end-of-candidates");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n\
        a=mid:0\r\na=rtpmap:96 H264/90000\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\n";

    #[test]
    fn fragment_follows_rfc8840() {
        let ice = OfferIce::from_offer(OFFER);
        let frag = ice.fragment(&["candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host".into()], true);
        assert_eq!(
            frag,
            "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
             a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host\r\na=end-of-candidates\r\n"
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // The offer is the browser's or ours and candidates come from the ICE agent:
            // any text makes a fragment of whole CRLF lines, each an `a=` or `m=` line, with
            // every candidate once and end-of-candidates last when asked.
            #[test]
            fn fragments_are_whole_sdp_lines(
                offer in "(\\PC{0,20}\r?\n|a=ice-ufrag:[a-z]{0,4}\r\n|m=video 9 X 96\r\n|a=mid:[0-9]\r\n){0,8}",
                cands in proptest::collection::vec("(a=)?candidate:[0-9a-z .]{0,30}", 0..4),
                end in any::<bool>(),
            ) {
                let ice = OfferIce::from_offer(&offer);
                let frag = ice.fragment(&cands, end);
                prop_assert!(frag.is_empty() || frag.ends_with("\r\n"));
                let lines: Vec<&str> = frag.split("\r\n").filter(|l| !l.is_empty()).collect();
                prop_assert!(lines.iter().all(|l| l.starts_with("a=") || l.starts_with("m=")), "{:?}", lines);
                let candidate_lines = lines.iter().filter(|l| l.starts_with("a=candidate:")).count();
                prop_assert_eq!(candidate_lines, cands.len());
                prop_assert_eq!(lines.last() == Some(&"a=end-of-candidates"), end);
            }
        }
    }
}
