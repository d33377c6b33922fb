//! The connection edge: everything between a socket and an authenticated
//! stream.

pub mod auth;
pub mod listener;
pub mod negotiate;
pub mod sasl;
pub mod stream;
pub mod tls;
