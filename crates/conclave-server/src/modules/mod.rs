//! The server's own features, one file each.

pub mod blocking;
pub mod carbons;
pub mod contact;
pub mod disco;
pub mod extdisco;
pub mod last;
pub mod offline;
pub mod ping;
pub mod presence;
pub mod private;
pub mod roster;
pub mod subscription;
pub mod time;
pub mod vcard;
pub mod version;
