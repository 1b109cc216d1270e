//! The WHIP client's error table, word for word from the WHIPClient reference.

/// Why a WHIP session could not start or stopped working.
///
/// The `Display` text of each variant is the exact message of the spec's error
/// table, so it can be shown to users and matched by callers:
///
/// ```
/// use dreamgate_whip::WhipError;
///
/// assert_eq!(WhipError::OfferRejected(503).to_string(), "WHIP offer failed: 503");
/// assert_eq!(WhipError::ConnectionTimedOut.to_string(), "Connection timed out");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhipError {
    /// `connect()` was called while a session is connecting or connected.
    #[error("WHIP client already has an active connection")]
    AlreadyConnected,
    /// The source has no video (the browser's "empty MediaStream").
    #[error("MediaStream has no tracks")]
    NoTracks,
    /// The source ended before the connection was made.
    #[error("Video track is not live")]
    TrackNotLive,
    /// The WHIP endpoint answered the offer with this non-success status
    /// (after the warm-up budget, for statuses that are retried).
    #[error("WHIP offer failed: {0}")]
    OfferRejected(u16),
    /// The offer never got an HTTP answer (request timeout, connection refused...).
    #[error("WHIP offer failed: {0}")]
    OfferUnreachable(String),
    /// The peer did not reach "connected" within the connection timeout.
    #[error("Connection timed out")]
    ConnectionTimedOut,
    /// No ICE candidate pair worked, or connectivity was lost for longer than
    /// the disconnected grace period.
    #[error("ICE connection failed")]
    IceFailed,
    /// WebRTC negotiation failed (unusable answer, DTLS failure, peer error).
    #[error("Peer connection failed")]
    PeerFailed,
    /// The connected session was lost and is being published again (a new offer POST):
    /// the error of the `connecting` state during a reconnect.
    #[error("Connection lost — reconnecting…")]
    ConnectionLost,
}
