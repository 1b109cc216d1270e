//! Offer validation and the shape of our answers, with browser-style SDP text.

use dreamgate_rtc::{accept_egress, accept_ingest, Peer, RtcConfig, RtcError};

/// A Chromium-style WHIP offer: audio + video (VP8, VP9, H.264 variants, AV1), BUNDLE,
/// rtcp-mux, actpass, host candidate.
fn chrome_offer(video_dir: &str, h264: bool) -> String {
    let mut video_pts = "96 97 98 99".to_string();
    let mut h264_lines = String::new();
    if h264 {
        video_pts.push_str(" 102 103 104 105 106 107 108 109");
        h264_lines = "\
a=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 goog-remb\r\n\
a=rtcp-fb:102 transport-cc\r\n\
a=rtcp-fb:102 ccm fir\r\n\
a=rtcp-fb:102 nack\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 rtx/90000\r\n\
a=fmtp:103 apt=102\r\n\
a=rtpmap:104 H264/90000\r\n\
a=rtcp-fb:104 ccm fir\r\n\
a=rtcp-fb:104 nack\r\n\
a=rtcp-fb:104 nack pli\r\n\
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
a=rtpmap:105 rtx/90000\r\n\
a=fmtp:105 apt=104\r\n\
a=rtpmap:106 H264/90000\r\n\
a=rtcp-fb:106 ccm fir\r\n\
a=rtcp-fb:106 nack\r\n\
a=rtcp-fb:106 nack pli\r\n\
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:107 rtx/90000\r\n\
a=fmtp:107 apt=106\r\n\
a=rtpmap:108 H264/90000\r\n\
a=rtcp-fb:108 ccm fir\r\n\
a=rtcp-fb:108 nack\r\n\
a=rtcp-fb:108 nack pli\r\n\
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f\r\n\
a=rtpmap:109 rtx/90000\r\n\
a=fmtp:109 apt=108\r\n"
            .to_string();
    }
    format!(
        "v=0\r\n\
o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS stream\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host generation 0 network-id 1\r\n\
a=ice-ufrag:Xb5Q\r\n\
a=ice-pwd:2JtQJ7qYqB4YkU5wdO4Xr8c+\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 1B:6A:2B:D0:8B:8F:46:74:EF:90:5D:67:4E:64:76:8F:0C:1E:5E:5F:9D:62:44:05:10:91:DA:1F:B6:F7:2D:C1\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=sendonly\r\n\
a=msid:stream audio-track\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:1001 cname:abc\r\n\
a=ssrc:1001 msid:stream audio-track\r\n\
m=video 9 UDP/TLS/RTP/SAVPF {video_pts}\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Xb5Q\r\n\
a=ice-pwd:2JtQJ7qYqB4YkU5wdO4Xr8c+\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 1B:6A:2B:D0:8B:8F:46:74:EF:90:5D:67:4E:64:76:8F:0C:1E:5E:5F:9D:62:44:05:10:91:DA:1F:B6:F7:2D:C1\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a={video_dir}\r\n\
a=msid:stream video-track\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 goog-remb\r\n\
a=rtcp-fb:96 transport-cc\r\n\
a=rtcp-fb:96 ccm fir\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:98 VP9/90000\r\n\
a=fmtp:98 profile-id=0\r\n\
a=rtpmap:99 rtx/90000\r\n\
a=fmtp:99 apt=98\r\n\
{h264_lines}\
a=ssrc-group:FID 2001 2002\r\n\
a=ssrc:2001 cname:abc\r\n\
a=ssrc:2001 msid:stream video-track\r\n\
a=ssrc:2002 cname:abc\r\n\
a=ssrc:2002 msid:stream video-track\r\n"
    )
}

/// The m-section of `sdp` starting with `m=<kind>`.
fn section<'a>(sdp: &'a str, kind: &str) -> &'a str {
    let start = sdp.find(&format!("m={kind}")).expect("m-line");
    let rest = &sdp[start + 2..];
    let end = rest.find("\r\nm=").map_or(rest.len(), |e| e + 2);
    &sdp[start..start + 2 + end]
}

#[tokio::test]
async fn chrome_whip_offer_gets_an_ice_lite_h264_answer() {
    let cfg = RtcConfig::default();
    let (ingest, answer) = accept_ingest(&cfg, &chrome_offer("sendonly", true)).await.unwrap();
    assert!(answer.starts_with("v=0\r\n"));
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=group:BUNDLE 0 1"), "{answer}");
    let port = ingest.local_addr().port();
    assert!(answer.contains(&format!("127.0.0.1 {port} typ host")), "{answer}");

    let audio = section(&answer, "audio");
    assert!(audio.contains("a=inactive"), "{audio}");

    let video = section(&answer, "video");
    for line in ["a=recvonly", "a=setup:passive", "a=rtcp-mux", "a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:sha-256 "]
    {
        assert!(video.contains(line), "missing {line} in {video}");
    }
    // H.264 only; the preferred format (constrained baseline, mode 1 = PT 106) first.
    assert!(!video.contains("VP8") && !video.contains("VP9"), "{video}");
    let m_line = video.lines().next().unwrap();
    let first_pt = m_line.split_whitespace().nth(3).unwrap();
    assert_eq!(first_pt, "106", "{m_line}");
    assert!(video.contains("a=rtpmap:106 H264/90000"), "{video}");
    assert!(video.contains("a=rtcp-fb:106 nack pli"), "{video}");
}

#[tokio::test]
async fn whep_offer_gets_a_sendonly_answer() {
    let cfg = RtcConfig::default();
    let (_egress, answer) = accept_egress(&cfg, &chrome_offer("recvonly", true)).await.unwrap();
    let video = section(&answer, "video");
    assert!(video.contains("a=sendonly"), "{video}");
    assert!(video.contains("packetization-mode=1"), "{video}");
    assert!(!video.contains("packetization-mode=0"), "{video}");
    assert!(video.contains("a=ssrc:"), "we announce our sending SSRC: {video}");
}

#[tokio::test]
async fn offers_without_h264_are_refused() {
    let cfg = RtcConfig::default();
    let vp8_only = chrome_offer("sendonly", false);
    assert!(matches!(accept_ingest(&cfg, &vp8_only).await, Err(RtcError::NoH264)));
    assert!(matches!(accept_egress(&cfg, &chrome_offer("recvonly", false)).await, Err(RtcError::NoH264)));

    // Audio only.
    let full = chrome_offer("sendonly", true);
    let audio_only = full[..full.find("m=video").unwrap()].replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0");
    assert!(matches!(accept_ingest(&cfg, &audio_only).await, Err(RtcError::NoH264)));

    // H.264 present only as a profile we cannot match (high 4:4:4), and mode 0 for egress.
    let odd = full
        .replace("profile-level-id=42001f", "profile-level-id=f4001f")
        .replace("profile-level-id=42e01f", "profile-level-id=f4001f")
        .replace("profile-level-id=640c1f", "profile-level-id=f4001f");
    assert!(matches!(accept_ingest(&cfg, &odd).await, Err(RtcError::NoH264)));
    let mode0 = chrome_offer("recvonly", true).replace("packetization-mode=1", "packetization-mode=0");
    assert!(matches!(accept_egress(&cfg, &mode0).await, Err(RtcError::NoH264)));

    let e = RtcError::NoH264;
    assert_eq!(e.to_string(), "offer has no H.264 video");
}

#[tokio::test]
async fn garbage_and_broken_offers_are_bad_sdp() {
    let cfg = RtcConfig::default();
    for garbage in ["", "hello", "v=0\r\n", "{\"type\":\"offer\"}", "\u{0}\u{1}\u{2}", "v=0\r\nm=video abc\r\n"] {
        let r = accept_ingest(&cfg, garbage).await;
        assert!(matches!(r, Err(RtcError::BadSdp(_))), "{garbage:?} -> {r:?}");
    }
    let full = chrome_offer("sendonly", true);
    // No DTLS fingerprint: cannot be secured.
    let no_fp: String = full.lines().filter(|l| !l.starts_with("a=fingerprint")).map(|l| format!("{l}\r\n")).collect();
    assert!(matches!(accept_ingest(&cfg, &no_fp).await, Err(RtcError::BadSdp(_))));
    // A WHEP-style (recvonly) offer sent to the WHIP side, and the other way round.
    assert!(matches!(accept_ingest(&cfg, &chrome_offer("recvonly", true)).await, Err(RtcError::BadSdp(_))));
    assert!(matches!(accept_egress(&cfg, &full).await, Err(RtcError::BadSdp(_))));
    // Truncations of a good offer never panic.
    for cut in (0..full.len()).step_by(97) {
        let _ = accept_ingest(&cfg, &full[..cut]).await;
    }
}

#[tokio::test]
async fn trickled_candidates_are_parsed() {
    let cfg = RtcConfig::default();
    let (ingest, _) = accept_ingest(&cfg, &chrome_offer("sendonly", true)).await.unwrap();
    let frag = "a=ice-ufrag:Xb5Q\r\na=ice-pwd:2JtQJ7qYqB4YkU5wdO4Xr8c+\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
a=candidate:2 1 udp 2122260222 127.0.0.1 54322 typ host generation 0\r\na=end-of-candidates\r\n";
    ingest.add_remote_candidates(frag).unwrap();
    assert!(matches!(ingest.add_remote_candidates("a=candidate:nonsense"), Err(RtcError::BadCandidate(_))));
}
