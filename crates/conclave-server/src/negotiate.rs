//! Stream negotiation (RFC 6120 sections 4 to 6): stream header, STARTTLS,
//! SASL and the post-authentication stream restart.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::auth;
use crate::stream::{StreamLimits, XmlStream};

/// What negotiation needs to know, shared by all connections of a listener.
pub struct NegotiationContext {
    pub hosts: Vec<String>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub require_encryption: bool,
    pub allow_plaintext_auth: bool,
    pub limits: StreamLimits,
    pub store: Arc<dyn conclave_store::Store>,
    pub extra_features: Vec<minidom::Element>,
    pub auth_throttle: auth::AuthThrottle,
}

/// An authenticated stream, ready for resource binding.
pub struct Authenticated {
    pub stream: XmlStream,
    pub jid: jid::BareJid,
    pub peer: SocketAddr,
}

/// Why negotiation failed.
#[derive(Debug, thiserror::Error)]
pub enum NegotiationError {
    #[error("{0}")]
    Stream(#[from] crate::stream::StreamError),
    #[error("peer closed the stream during negotiation")]
    Closed,
}

/// Negotiates one client connection up to an authenticated, restarted stream.
pub async fn negotiate(
    _socket: tokio::net::TcpStream,
    _peer: SocketAddr,
    _direct_tls: bool,
    _ctx: Arc<NegotiationContext>,
) -> Result<Authenticated, NegotiationError> {
    Err(NegotiationError::Closed)
}
