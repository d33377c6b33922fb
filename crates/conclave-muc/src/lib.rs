//! Multi-user chat (XEP-0045), behaving like Prosody's, as a pure state
//! machine: stanzas in, stanzas (and persistence effects) out. No I/O, no
//! async runtime, no clock: the caller passes the time in [`Context`].
//!
//! The server owns one [`Room`] per room, each inside one task, and a
//! [`Service`] for what is addressed to the service domain itself or to
//! a room that does not exist yet.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jid::BareJid;
use minidom::Element;

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

/// One room: its configuration, affiliations, occupants and history.
pub struct Room {
    jid: BareJid,
    #[allow(dead_code)]
    service: Arc<ServiceConfig>,
}

impl Room {
    /// A room that does not exist yet: the join presence that the caller
    /// passes next to [`Room::handle`] creates it (status 201, locked).
    pub fn new(jid: BareJid, service: Arc<ServiceConfig>) -> Room {
        Room { jid, service }
    }

    /// A persistent room from the JSON document of an earlier [`Effect::Save`].
    pub fn restore(jid: BareJid, state: &str, service: Arc<ServiceConfig>) -> Result<Room, RestoreError> {
        let _ = state;
        Ok(Room { jid, service })
    }

    pub fn jid(&self) -> &BareJid {
        &self.jid
    }

    /// Handles one stanza addressed to the room (`room@service`) or to an
    /// occupant (`room@service/nick`). Its `from` is the sender's full JID,
    /// stamped and checked by the server.
    pub fn handle(&mut self, stanza: Element, ctx: &Context) -> Vec<Effect> {
        let _ = (stanza, ctx);
        Vec::new()
    }

    /// `Some` when the room is public (listed in the service's disco#items).
    pub fn listing(&self) -> Option<RoomListing> {
        None
    }

    /// No occupant is in the room.
    pub fn is_empty(&self) -> bool {
        true
    }
}

/// The service itself: its domain's disco, and stanzas to rooms that do
/// not exist.
pub struct Service {
    config: Arc<ServiceConfig>,
}

impl Service {
    pub fn new(config: Arc<ServiceConfig>) -> Service {
        Service { config }
    }

    pub fn config(&self) -> &Arc<ServiceConfig> {
        &self.config
    }

    /// Handles a stanza addressed to the service domain itself; returns the
    /// replies.
    pub fn handle_domain_stanza(&self, stanza: Element, public_rooms: &[RoomListing], ctx: &Context) -> Vec<Element> {
        let _ = (stanza, public_rooms, ctx);
        Vec::new()
    }

    /// A stanza for a room that does not exist. `Ok(room)` when this stanza
    /// may create it (the caller then passes the same stanza to
    /// [`Room::handle`]); otherwise the error replies to send.
    pub fn on_missing_room(&self, stanza: &Element, ctx: &Context) -> Result<Room, Vec<Element>> {
        let _ = (stanza, ctx);
        Err(Vec::new())
    }
}
