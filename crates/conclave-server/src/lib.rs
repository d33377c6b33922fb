//! Conclave's XMPP server.
//!
//! Layers, from the socket inwards:
//! - [`listener`]: accepts TCP connections (per-IP limits), optional direct TLS.
//! - [`stream`], [`negotiate`], [`tls`], [`auth`]: the XML stream, STARTTLS,
//!   SASL and the post-authentication stream restart. Their output is an
//!   [`negotiate::Authenticated`] stream.
//! - [`session`]: resource binding and the life of one client session.
//! - [`router`]: addressing: local sessions, offline storage, the server's
//!   own handlers and the group-chat service.
//! - features: [`roster`], [`presence`], [`offline`], [`disco`], [`ping`], [`muc`].
//! - instant-messaging features: [`blocking`], [`carbons`], [`vcard`],
//!   [`private`], [`version`], [`time`], [`last`], [`contact`], [`extdisco`].
//! - [`config`] and [`server`]: configuration and starting/stopping it all.

// Connection layer
pub mod auth;
pub mod listener;
pub mod negotiate;
pub mod stream;
pub mod tls;

// Core
pub mod config;
pub mod disco;
pub mod muc;
pub mod offline;
pub mod ping;
pub mod presence;
pub mod roster;
pub mod router;
pub mod server;
pub mod session;
pub mod xml;

// Instant-messaging features
pub mod blocking;
pub mod carbons;
pub mod contact;
pub mod extdisco;
pub mod last;
pub mod private;
pub mod time;
pub mod vcard;
pub mod version;
