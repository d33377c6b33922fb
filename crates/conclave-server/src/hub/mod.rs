//! The core: sessions, delivery and addressing.

pub mod router;
pub mod session;
