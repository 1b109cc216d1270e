//! Trickle ICE: local candidates and `a=end-of-candidates` go out by PATCH
//! (`If-Match: <etag>`), one at a time; a PATCH answered 405 turns trickle off quietly;
//! new `Link` STUN servers are asked for server-reflexive candidates, and
//! `a=end-of-candidates` waits for them.

use super::state::WhipMachine;
use super::types::{Action, HttpReply, IceTransportPolicy};
use crate::link::IceServer;

impl WhipMachine {
    /// The peer gathered one more local candidate.
    pub(super) fn on_local_candidate(&mut self, candidate: String, out: &mut Vec<Action>) {
        if self.trickle && self.is_active() {
            self.candidates.push(candidate);
            self.try_patch(out);
        }
    }

    /// The candidates of the `GatherFrom` asked after the answer.
    pub(super) fn on_link_candidates(&mut self, candidates: Vec<String>, out: &mut Vec<Action>) {
        if std::mem::take(&mut self.gathering_link) && self.trickle && self.is_active() {
            self.candidates.extend(candidates);
            self.try_patch(out);
        }
    }

    /// Local gathering completed after the offer went out: `a=end-of-candidates` is due.
    pub(super) fn on_end_of_candidates(&mut self, out: &mut Vec<Action>) {
        if self.trickle {
            self.end_of_candidates = true;
            self.try_patch(out);
        }
    }

    /// After the answer: asks the announced STUN servers the peer did not use yet for
    /// server-reflexive candidates (they only matter to a peer that may still add some).
    pub(super) fn gather_from_link_servers(&mut self, out: &mut Vec<Action>) {
        let new: Vec<IceServer> = self
            .ice_servers
            .iter()
            .filter(|s| s.url.starts_with("stun:"))
            .filter(|s| !self.peer_ice_servers.iter().any(|used| used.url == s.url))
            .cloned()
            .collect();
        if self.trickle && self.opts.ice_transport_policy == IceTransportPolicy::All && !new.is_empty() {
            self.gathering_link = true;
            out.push(Action::GatherFrom(new));
        }
    }

    /// The reply to the PATCH in flight.
    pub(super) fn on_patch_reply(&mut self, reply: HttpReply, out: &mut Vec<Action>) {
        self.patch_in_flight = None;
        if reply.status == 405 {
            // The endpoint does not do trickle ICE (Livepeer): stop quietly.
            self.trickle = false;
            self.candidates.clear();
        } else {
            if let (true, Some(etag)) = ((200..300).contains(&reply.status), reply.etag) {
                self.etag = Some(etag);
            }
            self.try_patch(out);
        }
    }

    /// The PATCH in flight got no reply: the next candidates may go.
    pub(super) fn on_patch_error(&mut self) {
        self.patch_in_flight = None;
    }

    /// Sends what is pending (candidates, `a=end-of-candidates`) once the offer is
    /// answered and no PATCH is in flight.
    pub(super) fn try_patch(&mut self, out: &mut Vec<Action>) {
        let pending = !self.candidates.is_empty() || (self.end_of_candidates && !self.end_sent && !self.gathering_link);
        if !(self.trickle && self.answered() && pending && self.patch_in_flight.is_none()) {
            return;
        }
        let Some(url) = self.resource.clone() else {
            self.trickle = false; // nowhere to PATCH
            return;
        };
        let end = self.end_of_candidates && !self.end_sent && !self.gathering_link;
        let sdpfrag = self.offer_ice.fragment(&self.candidates, end);
        self.candidates.clear();
        self.end_sent |= end;
        let request = self.request_id();
        self.patch_in_flight = Some(request);
        out.push(Action::SendCandidates { request, url, etag: self.etag.clone(), sdpfrag });
    }
}
