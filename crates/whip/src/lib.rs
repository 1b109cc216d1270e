//! Dreamgate's native WHIP client (WebRTC-HTTP Ingestion Protocol, RFC 9725).
//!
//! Two layers:
//!
//! * [`machine`]: a pure, sans-IO state machine holding every timing rule of
//!   the spec's `WHIPClient` (connection timeout, ICE gathering timeout,
//!   trickle on/off, warm-up retries with backoff, disconnected grace, DELETE
//!   on teardown). It takes the current time and an event, returns actions.
//! * [`WhipClient`]: the async driver that runs the machine over `reqwest`, tokio
//!   timers and a `dreamgate-rtc` publisher, fed by a [`FrameSource`]
//!   ([`EncodingSource`]: test pattern or Y4M, H.264 via `dreamgate-media`).
//! * [`GatewaySession`]: publishing through a Dreamgate gateway (session
//!   cookie + `Origin`), as `dreamgate ingest --via` does.
//!
//! Errors use the spec's error table word for word ([`WhipError`]).

mod client;
mod error;
mod gateway;
mod link;
pub mod machine;
mod sdpfrag;
mod source;

pub use client::{ClientOptions, ClientStatus, RetryStatus, WhipClient};
pub use error::WhipError;
pub use gateway::{GatewayError, GatewaySession};
pub use link::{parse_ice_servers, IceServer};
pub use machine::{ConnectionState, IceTransportPolicy, WhipConnectionState, WhipMachine, WhipOptions};
pub use source::{EncodingSource, FrameSource};
/// Re-exported so callers can build WHIP URLs without depending on `url`.
pub use url::Url;
