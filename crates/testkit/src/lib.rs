//! Dreamgate's dev-only test kit: the helpers the integration suites shared by copy.
//!
//! Use it only as a `[dev-dependencies]` entry. It depends on `dreamgate-client`,
//! `dreamgate-media` and `dreamgate-rtc` (plus tokio and axum), never on
//! `dreamgate-engine` or `dreamgate-gateway`, so the engine's and the gateway's own suites
//! can use it too without a dependency cycle. (rtc's suites use it although the kit
//! depends on rtc: integration tests link the one `dreamgate-rtc` library the kit links,
//! so the types are the same. Unit tests inside a crate the kit depends on must not use
//! it: there the crate under test and the kit's copy of it are two different crates.)
//!
//! | helper | what it does | the copies it replaced |
//! |---|---|---|
//! | [`Feed`] | feeds a [`Publisher`](dreamgate_rtc::Publisher) the moving test pattern, H.264 at 30 fps, answering keyframe requests, until stopped | `crates/gateway/tests/common/mod.rs` (`Feed`, 60 s cap: [`Feed::start`]), `crates/engine/tests/media.rs` (`Feed`, square, 20 s cap, `sent` counter: [`Feed::start_limited`], [`Feed::sent`]) |
//! | [`PatternFrames`] | the test pattern as H.264 access units ([`MediaFrame`](dreamgate_rtc::MediaFrame)), one at a time | `crates/rtc/tests/common/mod.rs` (`Source`), `crates/cli/tests/watch_cli.rs` (`produce`), the encode loops of both `Feed`s |
//! | [`peer::wait_state`], [`peer::wait_ended`] | wait (at most 10 s) for a peer's state / for its task to end | `crates/rtc/tests/common/mod.rs` (`wait_state`, `wait_ended`) |
//! | [`status::wait_state`], [`status::wait_status`] | poll a stream's `/v1/streams/{id}/status` until a state / a condition | `crates/whip/tests/link_srflx.rs` and `crates/cli/tests/ingest_cli.rs` (`wait_state`), `crates/cli/tests/media_chain.rs` and `crates/engine/tests/media.rs` (`wait_status`) |
//! | [`eventually`], [`eventually_async`] | poll a condition (a closure, or an async one) every 50 ms for at most a limit | `crates/gateway/tests/common/mod.rs` (`eventually`, `eventually_async`), `crates/engine/tests/media.rs` and `compat.rs` (`wait_until`), `crates/cli/tests/instances.rs` (`eventually`) |
//! | [`Recorder`] | request recorder middleware in front of a real server: every request line on arrival ([`Recorder::hits`]), every exchange with bodies and headers once answered ([`Recorder::exchanges`]), requests held ([`Recorder::hold`]), answers held ([`Recorder::hold_answers`]) and requests refused with an error status ([`Recorder::refuse`]) on demand | `crates/gateway/tests/common/mod.rs` (`Recorder` + `Hits`, `hold_creates`, `hold_answers`, `fail_deletes`), `crates/cli/tests/instances.rs` (the hit log), `crates/whip/tests/link_srflx.rs` (`Recorder` of trickle PATCHes and ETags) |
//! | [`raw::connect_from`], [`raw::closed_within`], [`raw::roundtrip`], [`raw::GENEROUS`] | raw HTTP/1.1 over loopback TCP: a connection from a chosen source address, whether the server closed it in time, one hand-written request and its response | `crates/engine/tests/hostile_conn.rs`, `crates/gateway/tests/hostile_conn.rs`, `crates/serve/tests/hostile.rs`, `crates/cli/tests/hostile_conn_cli.rs` (`connect_from`) |
//!
//! Not here: `crates/engine/tests/seam.rs`'s `Recorder` is a fake `MediaBackend` (it
//! implements an engine trait, so it belongs to the engine's suite, not to a kit that must
//! not depend on the engine).
//!
//! Using it: add `dreamgate-testkit.workspace = true` under `[dev-dependencies]`; serve
//! `recorder.wrap(router)` instead of `router` to record (and hold or refuse) what reaches a
//! server.

mod feed;
mod frames;
pub mod peer;
pub mod raw;
mod recorder;
pub mod status;
mod wait;

pub use feed::Feed;
pub use frames::PatternFrames;
pub use recorder::{Exchange, Hits, Recorder};
pub use wait::{eventually, eventually_async};
