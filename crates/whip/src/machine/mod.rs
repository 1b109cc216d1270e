//! The WHIP client's brain: a sans-IO state machine (in the style of
//! `str0m` / `quinn-proto`) that owns every timer, retry and grace window.
//!
//! It never touches the network or the clock. The driver feeds it
//! [`Event`]s together with the current [`Instant`](std::time::Instant), executes the returned
//! [`Action`]s, and calls [`WhipMachine::handle`] with [`Event::Timeout`] once
//! [`WhipMachine::next_timeout`] has passed.
//!
//! # Timing rules
//!
//! * **Warm-up budget** (default 60 s, counted from `Connect`): an offer
//!   answered 404, 409, 429 or 5xx, or that got no HTTP answer at all, is
//!   retried after `backoff_initial * 2^n` (default 500 ms, 1 s, 2 s, 4 s,
//!   then capped at `backoff_max`, default 8 s). When the next attempt would
//!   start after the budget, the session fails with the last error
//!   (`WHIP offer failed: 503`).
//! * **Non-retryable answers** (3xx, 400, 401, 403, 405, 415, any other 4xx)
//!   fail at once with `WHIP offer failed: <status>`.
//! * **Connection timeout** (default 45 s): from `Connect` to a connected
//!   peer -> `Connection timed out`. Time spent waiting for the server to warm
//!   up is governed by the budget instead: while a retry is pending the
//!   connection timer is off, and when an offer is accepted after retries the
//!   45 s window restarts at that moment.
//! * **ICE gathering timeout** (default 20 s, trickle off): the offer is sent
//!   when gathering completes or when the timeout passes, whichever is first.
//!   With trickle on the offer is sent at once and candidates follow by PATCH
//!   (`application/trickle-ice-sdpfrag`, `If-Match: <etag>`) to the resource;
//!   a PATCH answered 405 turns trickle off quietly (Livepeer does that).
//! * **`Link` ICE servers** (RFC 9725 section 4.6): the 201 answer may announce
//!   ICE servers. With trickle on, the `stun:` ones the peer did not already use
//!   are asked for server-reflexive candidates ([`Action::GatherFrom`]); the
//!   candidates ([`Event::CandidatesGathered`]) go out in the trickle PATCH, and
//!   `a=end-of-candidates` waits for them. With trickle off (or a relay-only
//!   policy) nothing is gathered: the servers are kept
//!   ([`WhipMachine::ice_servers`]) for a later ICE restart, which this client
//!   does not do yet.
//! * **Disconnected grace** (default 5 s): "disconnected" is transient; the
//!   session fails with `ICE connection failed` only if the peer does not come
//!   back within the grace period.
//! * **Reconnects** (`max_reconnects`, default 0): a session that had connected and is
//!   then lost (its peer failed, or stayed "disconnected" past the grace: Livepeer ends a
//!   WHIP session as soon as ICE reports "disconnected", so no ICE restart can save it) is
//!   published again: the old resource is DELETEd, the peer dropped (the media source kept,
//!   [`Action::DropPeer`]), a new peer's offer POSTed with a fresh warm-up budget and
//!   connection window, while the state is `connecting` with the error
//!   `Connection lost — reconnecting…`. At most `max_reconnects` in a row; connecting
//!   again resets the count.
//! * On disconnect, failure or remote close the resource (`Location`, resolved
//!   against the WHIP URL) is DELETEd; the reply is ignored. An offer still in
//!   flight at that point has its resource DELETEd as soon as it is answered.
//!
//! # Layout
//!
//! * `types.rs`: what goes in and out: [`WhipOptions`], [`Event`], [`Action`], the
//!   HTTP reply and the public connection states.
//! * `state.rs`: the [`WhipMachine`] itself (its fields and phase), its read-only view
//!   and its timers ([`WhipMachine::next_timeout`]).
//! * `trickle.rs`: trickle ICE (candidate PATCHes, `a=end-of-candidates`, the 405 rule)
//!   and the gathering from `Link` STUN servers.
//! * `transitions.rs`: [`WhipMachine::handle`] and the session's transitions (offer,
//!   answer, warm-up retries, peer states, timeouts, teardown and DELETE).
//!
//! Each file depends only on the ones above it.

mod state;
mod transitions;
mod trickle;
mod types;

/// The local peer's connection state, as reported by the driver (`dreamgate-rtc`'s own type).
pub use dreamgate_rtc::PeerState;
pub use state::WhipMachine;
pub use transitions::is_warming_up;
pub use types::{
    Action, ConnectionState, Event, HttpFailure, HttpReply, IceTransportPolicy, RequestId, WhipConnectionState,
    WhipOptions,
};
