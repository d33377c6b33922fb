//! Services at their own domains, reached through the router.

pub mod muc;
