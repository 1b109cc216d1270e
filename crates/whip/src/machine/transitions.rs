//! The session's transitions: [`WhipMachine::handle`] and what each event does to the
//! offer, the answer, the warm-up retries, the peer's states, the timers and the teardown.

use std::time::Instant;

use super::state::{Phase, WhipMachine};
use super::types::{Action, ConnectionState, Event, HttpFailure, HttpReply, RequestId};
use crate::error::WhipError;
use crate::link::parse_ice_servers;
use crate::sdpfrag::OfferIce;
use dreamgate_rtc::PeerState;

impl WhipMachine {
    /// Handles one event at time `now`, returning what to do, in order.
    ///
    /// Only [`Event::Connect`] can fail: with
    /// [`WhipError::AlreadyConnected`] while a session is active.
    pub fn handle(&mut self, now: Instant, event: Event) -> Result<Vec<Action>, WhipError> {
        let mut out = Vec::new();
        match event {
            Event::Connect => {
                if self.is_active() {
                    return Err(WhipError::AlreadyConnected);
                }
                self.start(now, None, &mut out);
            }
            Event::OfferReady { sdp } => self.on_offer(now, sdp, &mut out),
            Event::LocalCandidate { candidate } => self.on_local_candidate(candidate, &mut out),
            Event::CandidatesGathered { candidates } => self.on_link_candidates(candidates, &mut out),
            Event::GatheringComplete { sdp } => self.on_gathered(now, sdp, &mut out),
            Event::AnswerRejected => {
                if self.phase == Phase::Answered {
                    self.end(ConnectionState::Failed, Some(WhipError::PeerFailed), &mut out);
                }
            }
            Event::HttpResponse { request, reply } => self.on_reply(now, request, reply, &mut out),
            Event::HttpError { request, error } => self.on_http_error(now, request, error, &mut out),
            Event::PeerStateChanged(peer) => self.on_peer(now, peer, &mut out),
            Event::Timeout => self.on_timeout(now, &mut out),
            Event::Disconnect => {
                if self.is_active() {
                    self.end(ConnectionState::Closed, None, &mut out);
                }
            }
        }
        Ok(out)
    }

    /// A fresh session (`error`: why, for a reconnect); orphans and request ids are kept.
    fn start(&mut self, now: Instant, error: Option<WhipError>, out: &mut Vec<Action>) {
        let orphans = std::mem::take(&mut self.orphans);
        let next_request = self.next_request;
        *self = Self::new(self.opts.clone());
        self.orphans = orphans;
        self.next_request = next_request;
        self.budget_end = Some(now + self.opts.warmup_budget);
        self.conn_deadline = Some(now + self.opts.connection_timeout);
        self.phase = Phase::AwaitingOffer;
        self.emit(ConnectionState::Connecting, error, out);
        self.peer_ice_servers = self.ice_servers.clone();
        out.push(Action::CreatePeer { ice_servers: self.ice_servers.clone(), policy: self.opts.ice_transport_policy });
    }

    fn on_offer(&mut self, now: Instant, sdp: String, out: &mut Vec<Action>) {
        if self.phase != Phase::AwaitingOffer {
            return;
        }
        self.offer_ice = OfferIce::from_offer(&sdp);
        self.offer_sdp = Some(sdp);
        if self.trickle {
            self.send_offer(out);
        } else {
            self.phase = Phase::Gathering { deadline: now + self.opts.ice_gathering_timeout };
        }
    }

    fn on_gathered(&mut self, _now: Instant, sdp: Option<String>, out: &mut Vec<Action>) {
        if !self.is_active() {
            return;
        }
        if let (Some(sdp), false) = (sdp, self.answered()) {
            self.offer_sdp = Some(sdp);
        }
        if matches!(self.phase, Phase::Gathering { .. }) {
            self.send_offer(out);
        } else {
            self.on_end_of_candidates(out);
        }
    }

    fn on_reply(&mut self, now: Instant, request: RequestId, reply: HttpReply, out: &mut Vec<Action>) {
        if self.phase == (Phase::Offering { request }) {
            self.on_offer_reply(now, reply, out);
        } else if let Some(i) = self.orphans.iter().position(|r| *r == request) {
            self.orphans.swap_remove(i);
            if (200..300).contains(&reply.status) {
                if let Some(url) = reply.location.as_deref().and_then(|l| self.opts.whip_url.join(l).ok()) {
                    let request = self.request_id();
                    out.push(Action::SendDelete { request, url });
                }
            }
        } else if self.patch_in_flight == Some(request) {
            self.on_patch_reply(reply, out);
        }
    }

    fn on_offer_reply(&mut self, now: Instant, reply: HttpReply, out: &mut Vec<Action>) {
        match reply.status {
            200..=299 => {
                self.resource = reply.location.as_deref().and_then(|l| self.opts.whip_url.join(l).ok());
                self.etag = reply.etag;
                let Some(answer) = answer_sdp(reply.content_type.as_deref(), reply.body) else {
                    self.end(ConnectionState::Failed, Some(WhipError::PeerFailed), out);
                    return;
                };
                let servers = parse_ice_servers(reply.link.iter().map(String::as_str));
                if !servers.is_empty() {
                    self.ice_servers = servers.clone();
                    out.push(Action::SetIceServers(servers));
                }
                out.push(Action::ApplyAnswer { sdp: answer });
                self.gather_from_link_servers(out);
                self.phase = Phase::Answered;
                if self.retries > 0 {
                    self.conn_deadline = Some(now + self.opts.connection_timeout);
                }
                self.try_patch(out);
            }
            status if is_warming_up(status) => self.retry_or_fail(now, WhipError::OfferRejected(status), out),
            status => self.end(ConnectionState::Failed, Some(WhipError::OfferRejected(status)), out),
        }
    }

    fn on_http_error(&mut self, now: Instant, request: RequestId, error: HttpFailure, out: &mut Vec<Action>) {
        if self.phase == (Phase::Offering { request }) {
            self.retry_or_fail(now, WhipError::OfferUnreachable(error.to_string()), out);
        } else if self.patch_in_flight == Some(request) {
            self.on_patch_error();
        } else {
            self.orphans.retain(|r| *r != request);
        }
    }

    fn on_peer(&mut self, now: Instant, peer: PeerState, out: &mut Vec<Action>) {
        match (self.phase, peer) {
            (Phase::Answered | Phase::Disconnected { .. }, PeerState::Connected) => {
                self.phase = Phase::Connected;
                self.ever_connected = true;
                self.reconnects = 0;
                self.conn_deadline = None;
                self.emit(ConnectionState::Connected, None, out);
            }
            (Phase::Connected, PeerState::Disconnected) => {
                self.phase = Phase::Disconnected { deadline: now + self.opts.disconnected_grace };
                self.emit(ConnectionState::Disconnected, None, out);
            }
            (Phase::Answered | Phase::Connected | Phase::Disconnected { .. }, PeerState::Failed) => {
                let error = if self.ever_connected { WhipError::PeerFailed } else { WhipError::IceFailed };
                self.lost(now, error, out);
            }
            (Phase::Answered | Phase::Connected | Phase::Disconnected { .. }, PeerState::Closed) => {
                self.end(ConnectionState::Closed, None, out);
            }
            // The peer died before ICE could even start: not an ICE problem.
            (_, PeerState::Failed | PeerState::Closed) if self.is_active() => {
                self.end(ConnectionState::Failed, Some(WhipError::PeerFailed), out);
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.conn_deadline.is_some_and(|d| now >= d) {
            self.end(ConnectionState::Failed, Some(WhipError::ConnectionTimedOut), out);
            return;
        }
        match self.phase {
            Phase::Gathering { deadline } | Phase::RetryWait { at: deadline } if now >= deadline => {
                self.send_offer(out)
            }
            Phase::Disconnected { deadline } if now >= deadline => self.lost(now, WhipError::IceFailed, out),
            _ => {}
        }
    }

    /// The session's peer failed (or stayed disconnected past the grace). A session that had
    /// connected is published again by a new offer while `max_reconnects` allows (Livepeer ends
    /// the session on "disconnected": an ICE restart cannot save it); otherwise it fails.
    fn lost(&mut self, now: Instant, error: WhipError, out: &mut Vec<Action>) {
        if !self.ever_connected || self.reconnects >= self.opts.max_reconnects {
            self.end(ConnectionState::Failed, Some(error), out);
            return;
        }
        let reconnects = self.reconnects + 1;
        out.push(Action::DropPeer);
        if let Some(url) = self.resource.take() {
            let request = self.request_id();
            out.push(Action::SendDelete { request, url });
        }
        let ice_servers = self.ice_servers.clone();
        self.start(now, Some(WhipError::ConnectionLost), out);
        // `Link` servers learnt from the lost session still apply to the new one
        self.ice_servers = ice_servers.clone();
        self.peer_ice_servers = ice_servers.clone();
        if let Some(Action::CreatePeer { ice_servers: servers, .. }) = out.last_mut() {
            *servers = ice_servers;
        }
        self.ever_connected = true;
        self.reconnects = reconnects;
    }

    fn retry_or_fail(&mut self, now: Instant, error: WhipError, out: &mut Vec<Action>) {
        let at = now + self.opts.backoff(self.retries);
        if self.budget_end.is_none_or(|end| at > end) {
            self.end(ConnectionState::Failed, Some(error), out);
            return;
        }
        self.retries += 1;
        self.phase = Phase::RetryWait { at };
        self.conn_deadline = None;
        out.push(Action::RetryScheduled { retry: self.retries, at, error });
    }

    fn send_offer(&mut self, out: &mut Vec<Action>) {
        let Some(sdp) = self.offer_sdp.clone() else {
            self.end(ConnectionState::Failed, Some(WhipError::PeerFailed), out);
            return;
        };
        let request = self.request_id();
        self.phase = Phase::Offering { request };
        out.push(Action::SendOffer { request, url: self.opts.whip_url.clone(), sdp });
    }

    fn end(&mut self, state: ConnectionState, error: Option<WhipError>, out: &mut Vec<Action>) {
        if let Phase::Offering { request } = self.phase {
            self.orphans.push(request);
        }
        if self.phase != Phase::Idle {
            out.push(Action::ClosePeer);
        }
        if let Some(url) = self.resource.take() {
            let request = self.request_id();
            out.push(Action::SendDelete { request, url });
        }
        self.phase = Phase::Ended;
        self.conn_deadline = None;
        self.patch_in_flight = None;
        self.emit(state, error, out);
    }
}

/// Statuses a warming-up endpoint answers: retried inside the budget.
pub fn is_warming_up(status: u16) -> bool {
    matches!(status, 404 | 409 | 429 | 500..=599)
}

/// The answer SDP of a successful offer reply, if usable.
fn answer_sdp(content_type: Option<&str>, body: String) -> Option<String> {
    let sdp_type = content_type
        .map(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/sdp"))
        .unwrap_or(true);
    (sdp_type && body.trim_start().starts_with("v=")).then_some(body)
}
