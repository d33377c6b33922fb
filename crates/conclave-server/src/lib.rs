//! Conclave's XMPP server.
//!
//! - [`edge`]: the connection edge: listeners, the XML stream, STARTTLS,
//!   SASL and the post-authentication restart. Its output is an
//!   authenticated stream.
//! - [`hub`]: sessions and delivery, and the router, which decides where a
//!   stanza goes.
//! - [`modules`]: the server's own features, one file each.
//! - [`services`]: the components at their own domains (group chat).
//! - [`config`] and [`server`]: configuration and starting/stopping it all.

pub mod config;
pub mod edge;
pub mod hub;
pub mod modules;
pub mod server;
pub mod services;
pub mod xml;
