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
//! | helper | what it does | the copies it replaces |
//! |---|---|---|
//! | [`Feed`] | feeds a [`Publisher`](dreamgate_rtc::Publisher) the moving test pattern, H.264 at 30 fps, answering keyframe requests, until stopped | `crates/gateway/tests/common/mod.rs` (`Feed`, 60 s cap: [`Feed::start`]), `crates/engine/tests/media.rs` (`Feed`, square, 20 s cap, `sent` counter: [`Feed::start_limited`], [`Feed::sent`]) |
//! | [`PatternFrames`] | the test pattern as H.264 access units ([`MediaFrame`](dreamgate_rtc::MediaFrame)), one at a time | `crates/rtc/tests/common/mod.rs` (`Source`), `crates/cli/tests/watch_cli.rs` (`produce`), the encode loops of both `Feed`s |
//! | [`peer::wait_state`], [`peer::wait_ended`] | wait (at most 10 s) for a peer's state / for its task to end | `crates/rtc/tests/common/mod.rs` (`wait_state`, `wait_ended`) |
//! | [`status::wait_state`], [`status::wait_status`] | poll a stream's `/v1/streams/{id}/status` until a state / a condition | `crates/whip/tests/link_srflx.rs` and `crates/cli/tests/ingest_cli.rs` (`wait_state`), `crates/cli/tests/media_chain.rs` and `crates/engine/tests/media.rs` (`wait_status`) |
//! | [`eventually`] | poll a condition every 50 ms for at most a limit | `crates/gateway/tests/common/mod.rs` (`eventually`), `crates/engine/tests/media.rs` (`wait_until`) |
//! | [`Recorder`] | request recorder middleware in front of a real server: every request line on arrival ([`Recorder::hits`]), every exchange with bodies and headers once answered ([`Recorder::exchanges`]), and requests held on demand ([`Recorder::hold`]) | `crates/gateway/tests/common/mod.rs` (`Recorder` + `Hits`, `hold_creates`: [`Recorder::hold`] `POST /v1/streams`), `crates/whip/tests/link_srflx.rs` (`Recorder` of trickle PATCHes and ETags) |
//!
//! Not here: `crates/engine/tests/seam.rs`'s `Recorder` is a fake `MediaBackend` (it
//! implements an engine trait, so it belongs to the engine's suite, not to a kit that must
//! not depend on the engine).
//!
//! Migrating a suite: add `dreamgate-testkit.workspace = true` under `[dev-dependencies]`,
//! then for example:
//!
//! * gateway: `Feed::start(publisher, 512, 512)` and `feed.stop().await` stay as they are;
//!   `TestEngine` keeps a [`Recorder`] and serves `recorder.wrap(dreamgate_engine::router(..))`;
//!   its `hits` field becomes `recorder.hits()` (a [`Hits`] with the same `all`/`len`/`any`),
//!   `hold_creates()` / `release_creates()` become `recorder.hold(Method::POST, "/v1/streams")`
//!   / `recorder.release()`; `eventually` is the kit's.
//! * engine (`tests/media.rs`): `Feed::start(p, 384)` becomes
//!   `Feed::start_limited(p, 384, 384, 30 * 20)`, `feed.sent.load(Ordering::Relaxed)` becomes
//!   `feed.sent()`, `wait_until` becomes [`eventually`], `wait_status` becomes
//!   [`status::wait_status`].

mod feed;
mod frames;
pub mod peer;
mod recorder;
pub mod status;
mod wait;

pub use feed::Feed;
pub use frames::PatternFrames;
pub use recorder::{Exchange, Hits, Recorder};
pub use wait::eventually;
