//! What the gateway remembers about each stream it created ([`StreamRecord`]),
//! the changes the WHIP/WHEP legs make to it ([`RecordUpdate`]), and which
//! strings can be stream ids. Kept by the store; ruled on by [`crate::registry`].

use url::Url;

use crate::session::SessionId;

/// What the gateway remembers about a stream it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Upstream stream id.
    pub id: String,
    /// The session that created it.
    pub owner: SessionId,
    /// The model the stream was created with (always sent with updates).
    pub model_id: String,
    /// Checked upstream WHIP URL from the create response.
    pub whip_url: Url,
    /// Checked upstream WHIP session resource (from the WHIP answer's `Location`).
    pub whip_resource: Option<Url>,
    /// Checked upstream WHEP URL (WHIP answer `Livepeer-Playback-URL` or status).
    pub whep_url: Option<Url>,
    /// Checked upstream WHEP viewer resource.
    pub whep_resource: Option<Url>,
}

/// A change to a stream's stored upstream URLs (after a WHIP/WHEP answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordUpdate {
    /// A WHIP answer: its session resource (replacing the old one) and, when
    /// it named one, the playback (WHEP) URL.
    WhipAnswer {
        /// The WHIP session resource (`Location`), if any.
        resource: Option<Url>,
        /// The WHEP URL (`Livepeer-Playback-URL`), if named.
        playback: Option<Url>,
    },
    /// The WHEP URL (learnt from the stream's status).
    WhepUrl(Url),
    /// The WHIP session resource (`None`: torn down).
    WhipResource(Option<Url>),
    /// The WHEP viewer resource (`None`: torn down).
    WhepResource(Option<Url>),
}

impl RecordUpdate {
    /// Applies the change to `r`.
    pub fn apply(&self, r: &mut StreamRecord) {
        match self {
            RecordUpdate::WhipAnswer { resource, playback } => {
                r.whip_resource = resource.clone();
                if playback.is_some() {
                    r.whep_url = playback.clone();
                }
            }
            RecordUpdate::WhepUrl(u) => r.whep_url = Some(u.clone()),
            RecordUpdate::WhipResource(u) => r.whip_resource = u.clone(),
            RecordUpdate::WhepResource(u) => r.whep_resource = u.clone(),
        }
    }
}

/// Whether `id` can be a stream id: upstream ids look like `str_...`;
/// anything outside `[A-Za-z0-9_-]{1,128}` is not an id.
pub fn valid_stream_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
