//! The core: sessions and delivery ([`sessions`]), the life of one client
//! session ([`session`]), addressing ([`router`]), and the module API
//! ([`module`]) with its dispatch ([`dispatch`]).

pub mod dispatch;
pub mod module;
pub mod router;
pub mod session;
pub mod sessions;
