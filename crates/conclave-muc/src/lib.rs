//! Multi-user chat (XEP-0045), behaving like Prosody's, as a pure state
//! machine: stanzas in, stanzas (and persistence effects) out. No I/O, no
//! async runtime, no clock: the caller passes the time in [`Context`].
//!
//! The server owns one [`Room`] per room, each inside one task, and a
//! [`Service`] for what is addressed to the service domain itself or to
//! a room that does not exist yet.

use chrono::{DateTime, Utc};
use jid::{BareJid, FullJid};
use minidom::Element;

mod admin;
mod affiliation;
mod config;
mod disco;
mod errors;
mod history;
mod invite;
mod join;
mod members_only;
mod message;
mod moderated;
mod nick;
mod occupant;
mod occupant_id;
mod owner;
mod password;
mod persistence;
mod presence;
mod register;
mod role;
mod room;
mod service;
mod shutdown;
mod subject;
mod whois;
mod xml;

#[cfg(test)]
mod testing;

pub use affiliation::Affiliation;
pub use config::{AllowPm, RoomConfig, Whois};
pub use role::Role;
pub use room::Room;
pub use service::Service;

/// Service-wide settings, shared by every room.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The service's domain, e.g. `conference.localhost`.
    pub domain: String,
    /// Service administrators: owners of every room.
    pub admins: Vec<BareJid>,
    /// Who may create rooms.
    pub creation: CreationPolicy,
    /// The server's local virtual hosts (for [`CreationPolicy::LocalUsers`]).
    pub local_hosts: Vec<String>,
    /// Upper bound for a room's history length.
    pub max_history: usize,
    /// Upper bound on the bytes of a room's history (the serialised
    /// messages): older messages go first, and a message larger than the
    /// whole bound is not kept.
    pub max_history_bytes: usize,
    /// Upper bound on occupants per room (0: none).
    pub max_occupants: usize,
}

/// Who may create rooms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreationPolicy {
    /// Anyone, local or not.
    Anyone,
    /// Accounts of the server's own virtual hosts (the default).
    LocalUsers,
    /// Only service administrators.
    Admins,
}

/// What a handler needs from the outside world.
#[derive(Clone, Debug)]
pub struct Context {
    pub now: DateTime<Utc>,
}

/// What the caller must do after a stanza was handled, in order.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Deliver this stanza; its `from` and `to` are set.
    Send(Element),
    /// Deliver the same stanza to each of these sessions: `stanza` has its
    /// `from` set and no `to`; each copy is addressed to one recipient. Used
    /// for what is identical for every occupant (groupchat messages,
    /// subject changes, room notices), so that the caller can serialise it
    /// once.
    Broadcast { stanza: Element, to: Vec<FullJid> },
    /// The room's persistent state changed: save this JSON document (with
    /// `Store::room_save`) before carrying out the effects that follow.
    Save(String),
    /// The room is gone (destroyed, or temporary and now empty): forget it
    /// and delete any saved state.
    Remove,
}

/// A public room, for the service's disco#items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomListing {
    pub jid: BareJid,
    pub name: Option<String>,
}

/// Why a saved room could not be restored.
#[derive(Debug, thiserror::Error)]
#[error("cannot restore room: {0}")]
pub struct RestoreError(pub String);
