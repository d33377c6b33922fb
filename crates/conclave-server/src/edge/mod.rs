//! The connection edge: everything between a socket and an authenticated
//! stream.

pub mod auth;
pub mod listener;
pub mod negotiate;
pub mod sasl;
pub mod stream;
pub mod tls;

/// The features of the edge itself in the server's disco#info.
pub const DISCO_FEATURES: &[&str] = &[xmpp_parsers::ns::STREAM_LIMITS];
