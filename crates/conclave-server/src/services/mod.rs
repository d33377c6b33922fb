//! Services at their own domains, reached through the router as
//! components: group chat and the bytestreams proxy.

pub mod muc;
pub mod proxy65;
