//! The scenario's media steps: WHIP signalling checks and a real publish of the test
//! pattern, the WHEP pull of the output while publishing, and the CORS preflights of both.

use dreamgate_media::H264Decoder;
use dreamgate_rtc::{Publisher, Viewer};
use dreamgate_whip::{ClientOptions, EncodingSource, WhipClient};

use super::*;

impl Runner<'_> {
    /// WHIP (signalling checks, then a real publish), WHEP pull while publishing.
    pub(super) async fn media(&mut self, stream: &Stream) {
        let whip = stream.whip_url.clone();
        self.step("whip preflight");
        self.preflight("whip preflight", &whip, "POST", true).await;

        self.step("whip with wrong content type");
        let req = self.http.post(whip.clone()).header(header::CONTENT_TYPE, "text/plain").body("v=0\r\n");
        if let Some(a) = self.send("whip with wrong content type", req).await {
            self.expect_status("whip with wrong content type", &a, &[415]);
        }

        self.step("whip offer");
        let whep = self.whip_offer(&whip).await;

        self.step("whip publish");
        let mut options = ClientOptions::new(whip.clone());
        options.rtc = self.cfg.rtc.clone();
        options.whip.warmup_budget = self.cfg.warmup;
        if whip.host().is_some_and(|h| dreamgate_client::is_loopback_host(&h)) {
            options.whip.ice_servers = Vec::new();
        }
        let client = match WhipClient::new(options) {
            Ok(c) => c,
            Err(e) => return self.deviate("whip publish", "(request)", &format!("cannot build the WHIP client: {e}")),
        };
        let source = match EncodingSource::test_pattern(SIZE, SIZE, 30) {
            Ok(s) => s,
            Err(e) => return self.deviate("whip publish", "(media)", &format!("cannot start the encoder: {e}")),
        };
        let connected = match client.connect(Box::new(source)).await {
            Ok(()) => tokio::time::timeout(self.cfg.warmup + REQUEST_TIMEOUT, client.wait_connected())
                .await
                .unwrap_or_else(|_| Err(dreamgate_whip::WhipError::PeerFailed)),
            Err(e) => Err(e),
        };
        match connected {
            Ok(()) => {
                let live = Instant::now();
                let whep = whep.or_else(|| self.whep_from_status.as_deref().and_then(|u| u.parse().ok()));
                match whep {
                    Some(url) => self.whep_pull(&url).await,
                    None => self.deviate(
                        "whep pull",
                        "(scenario)",
                        "no WHEP URL (no Livepeer-Playback-URL, no status whep_url)",
                    ),
                }
                tokio::time::sleep(self.cfg.publish_for.saturating_sub(live.elapsed())).await;
                if client.frames_sent() == 0 {
                    self.deviate("whip publish", "(media)", "connected but no frame was sent");
                }
                self.note(&format!("whip publish: {} frames sent", client.frames_sent()));
            }
            Err(e) => self.deviate("whip publish", "(connection)", &format!("did not connect: {e}")),
        }
        client.shutdown().await;
    }

    /// A raw WHIP POST (its answer's status and headers), then DELETE. Returns the WHEP URL.
    async fn whip_offer(&mut self, whip: &Url) -> Option<Url> {
        const STEP: &str = "whip offer";
        let (mut publisher, offer) = match Publisher::new(&self.cfg.rtc, &[]).await {
            Ok(p) => p,
            Err(e) => {
                self.deviate(STEP, "(media)", &format!("cannot create a WebRTC offer: {e}"));
                return None;
            }
        };
        let rq = self.rq();
        let a = self.send_ready(STEP, || rq.offer(whip, &offer)).await?;
        if !self.expect_status(STEP, &a, &[201]) {
            return None;
        }
        self.expect_content_type(STEP, &a, "application/sdp");
        let location = self.required_url(STEP, &a, "location", whip, false);
        if a.header("etag").is_none() {
            self.deviate(STEP, "(header ETag)", "missing");
        }
        let whep = self.required_url(STEP, &a, "livepeer-playback-url", whip, true);
        self.cors_answer(STEP, &a, &["location", "livepeer-playback-url"]);
        if let Err(e) = publisher.set_answer(&a.body) {
            self.deviate(STEP, "(body)", &format!("not a usable SDP answer: {e}"));
        }
        if let Some(resource) = location {
            self.step("whip resource preflight");
            self.preflight("whip resource preflight", &resource, "DELETE", false).await;
            // Livepeer does not honour this DELETE (documented): its answer is not checked.
            let _ = self.http.delete(resource).header(header::ORIGIN, &self.cfg.origin).send().await;
        }
        publisher.close();
        whep
    }

    /// WHEP: POST an offer (retrying "not ready"), check the answer, decode one frame, DELETE.
    async fn whep_pull(&mut self, whep: &Url) {
        const STEP: &str = "whep pull";
        self.step("whep preflight");
        self.preflight("whep preflight", whep, "POST", true).await;
        self.step(STEP);
        let rtc = RtcConfig { connect_timeout: self.cfg.media_timeout, ..self.cfg.rtc.clone() };
        let (mut viewer, offer) = match Viewer::new(&rtc).await {
            Ok(v) => v,
            Err(e) => return self.deviate(STEP, "(media)", &format!("cannot create a WebRTC offer: {e}")),
        };
        let rq = self.rq();
        let Some(a) = self.send_ready(STEP, || rq.offer(whep, &offer)).await else { return };
        if !self.expect_status(STEP, &a, &[201]) {
            return;
        }
        self.expect_content_type(STEP, &a, "application/sdp");
        let location = self.required_url(STEP, &a, "location", whep, false);
        self.cors_answer(STEP, &a, &["location"]);
        match viewer.set_answer(&a.body) {
            Ok(()) => match tokio::time::timeout(self.cfg.media_timeout, first_frame(&mut viewer)).await {
                Ok(Ok((w, h))) => self.note(&format!("whep pull: decoded a {w}x{h} frame")),
                Ok(Err(e)) => self.deviate(STEP, "(media)", &e),
                Err(_) => self.deviate(
                    STEP,
                    "(media)",
                    &format!("no frame decoded within {} s", self.cfg.media_timeout.as_secs()),
                ),
            },
            Err(e) => self.deviate(STEP, "(body)", &format!("not a usable SDP answer: {e}")),
        }
        viewer.close();
        if let Some(resource) = location {
            let _ = self.http.delete(resource).header(header::ORIGIN, &self.cfg.origin).send().await;
        }
    }

    // ---- checks ----

    /// A CORS preflight as a browser sends it for `method` (with `Content-Type` when `with_body`).
    async fn preflight(&mut self, step: &str, url: &Url, method: &str, with_body: bool) {
        let mut req = self
            .http
            .request(Method::OPTIONS, url.clone())
            .header(header::ORIGIN, &self.cfg.origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, method);
        if with_body {
            req = req.header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type");
        }
        let Some(a) = self.send(step, req).await else { return };
        if !self.expect_status(step, &a, &[204, 200]) {
            return;
        }
        self.allow_origin(step, &a);
        let methods = a.header("access-control-allow-methods").unwrap_or("");
        if !list_has(methods, method) {
            self.deviate(
                step,
                "(header Access-Control-Allow-Methods)",
                &format!("does not allow {method}: {methods:?}"),
            );
        }
        let headers = a.header("access-control-allow-headers").unwrap_or("");
        if with_body && !list_has(headers, "content-type") {
            self.deviate(
                step,
                "(header Access-Control-Allow-Headers)",
                &format!("does not allow content-type: {headers:?}"),
            );
        }
    }

    /// `Access-Control-Allow-Origin` and the exposed headers of an actual answer.
    fn cors_answer(&mut self, step: &str, a: &Answer, exposed: &[&str]) {
        self.allow_origin(step, a);
        let list = a.header("access-control-expose-headers").unwrap_or("");
        for name in exposed {
            if !list_has(list, name) {
                self.deviate(
                    step,
                    "(header Access-Control-Expose-Headers)",
                    &format!("does not expose {name}: {list:?}"),
                );
            }
        }
    }

    fn allow_origin(&mut self, step: &str, a: &Answer) {
        match a.header("access-control-allow-origin") {
            None => self.deviate(step, "(header Access-Control-Allow-Origin)", "missing"),
            Some(v) if v != "*" && v != self.cfg.origin => self.deviate(
                step,
                "(header Access-Control-Allow-Origin)",
                &format!("{v:?} is neither * nor the Origin"),
            ),
            Some(_) => {}
        }
    }
}

/// Receives until one picture decodes; its size.
async fn first_frame(viewer: &mut Viewer) -> Result<(u32, u32), String> {
    let mut decoder = H264Decoder::new().map_err(|e| format!("cannot start the H.264 decoder: {e}"))?;
    loop {
        let Some(frame) = viewer.frames.recv().await else {
            return Err(format!("the WHEP connection ended ({:?}) before a frame decoded", viewer.state()));
        };
        match decoder.decode(&frame.data) {
            Ok(Some(p)) => return Ok((p.width, p.height)),
            Ok(None) => {}
            Err(_) => viewer.request_keyframe(),
        }
    }
}
