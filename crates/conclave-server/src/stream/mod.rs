//! One XMPP XML stream (RFC 6120 section 4) over plain TCP or TLS:
//! incremental parsing of the peer's stream into top-level elements, with
//! limits, and serialisation of outgoing stanzas.

use xmpp_parsers::stream_error::DefinedCondition;

/// Limits applied to the peer's stream.
#[derive(Clone, Debug)]
pub struct StreamLimits {
    /// Maximum size in bytes of one top-level element.
    pub max_stanza_bytes: usize,
    /// Maximum nesting depth of elements inside a top-level element.
    pub max_depth: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_stanza_bytes: 262_144,
            max_depth: 64,
        }
    }
}

/// Why a stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("stream error {condition:?}: {text}")]
    Stream {
        condition: DefinedCondition,
        text: String,
    },
}

/// One XMPP XML stream.
pub struct XmlStream {
    secure: bool,
}

impl XmlStream {
    /// Next top-level element after negotiation; `Ok(None)` when the peer
    /// closed the stream. Cancel-safe.
    pub async fn next_stanza(&mut self) -> Result<Option<minidom::Element>, StreamError> {
        Ok(None)
    }

    /// Serialises one stanza and flushes.
    pub async fn send(&mut self, stanza: &minidom::Element) -> Result<(), StreamError> {
        self.send_bytes(&serialize(stanza)).await
    }

    /// Writes already-serialised bytes and flushes.
    pub async fn send_bytes(&mut self, _bytes: &[u8]) -> Result<(), StreamError> {
        Ok(())
    }

    /// Sends a stream error (if any), closes the stream and the socket.
    pub async fn close(&mut self, _error: Option<(DefinedCondition, String)>) {}

    pub fn is_secure(&self) -> bool {
        self.secure
    }
}

/// Serialises a stanza the way [`XmlStream::send`] would.
pub fn serialize(stanza: &minidom::Element) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = stanza.write_to(&mut out);
    out
}
