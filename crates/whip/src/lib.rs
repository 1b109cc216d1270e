//! Dreamgate's native WHIP client (WebRTC-HTTP Ingestion Protocol, RFC 9725).
//!
//! Two layers:
//!
//! * [`machine`]: a pure, sans-IO state machine holding every timing rule of
//!   the spec's `WHIPClient` (connection timeout, ICE gathering timeout,
//!   trickle on/off, warm-up retries with backoff, disconnected grace, DELETE
//!   on teardown). It takes the current time and an event, returns actions.
//! * `client`: the async driver that runs the machine over `reqwest`, tokio
//!   timers and a `dreamgate-rtc` publisher.
//!
//! Errors use the spec's error table word for word ([`WhipError`]).

mod error;
mod link;
pub mod machine;
mod sdpfrag;

pub use error::WhipError;
pub use link::{parse_ice_servers, IceServer};
pub use machine::{
    ConnectionState, IceTransportPolicy, WhipConnectionState, WhipMachine, WhipOptions,
};
