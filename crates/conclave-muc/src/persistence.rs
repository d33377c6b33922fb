//! Saving and restoring a persistent room: its configuration,
//! affiliations (with reasons and reserved nicks), occupant-id salt and
//! subject, as a versioned JSON document.

use std::collections::BTreeMap;
use std::sync::Arc;

use jid::BareJid;
use serde::{Deserialize, Serialize};

use crate::affiliation::AffiliationEntry;
use crate::config::RoomConfig;
use crate::room::Room;
use crate::subject::Subject;
use crate::{RestoreError, ServiceConfig};

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    config: RoomConfig,
    affiliations: BTreeMap<String, AffiliationEntry>,
    salt: String,
    #[serde(default)]
    subject: Option<Subject>,
    #[serde(default)]
    locked: bool,
}

const VERSION: u32 = 1;

impl Room {
    /// The room's persistent state as JSON.
    pub(crate) fn snapshot(&self) -> String {
        let snap = Snapshot {
            version: VERSION,
            config: self.config.clone(),
            affiliations: self
                .affiliations
                .iter()
                .map(|(j, e)| (j.to_string(), e.clone()))
                .collect(),
            salt: self.salt.clone(),
            subject: self.subject.clone(),
            locked: self.locked,
        };
        // Serialising plain data cannot fail; an empty document is never
        // produced in practice.
        serde_json::to_string(&snap).unwrap_or_default()
    }

    /// A persistent room from the JSON document of an earlier `Effect::Save`.
    pub fn restore(
        jid: BareJid,
        state: &str,
        service: Arc<ServiceConfig>,
    ) -> Result<Room, RestoreError> {
        let snap: Snapshot =
            serde_json::from_str(state).map_err(|e| RestoreError(e.to_string()))?;
        if snap.version != VERSION {
            return Err(RestoreError(format!(
                "unknown snapshot version {}",
                snap.version
            )));
        }
        let mut affiliations = BTreeMap::new();
        for (j, e) in snap.affiliations {
            let bare: BareJid = j
                .parse()
                .map_err(|e| RestoreError(format!("bad JID {j:?}: {e}")))?;
            affiliations.insert(bare, e);
        }
        let mut room = Room::new(jid, service);
        room.created = true;
        room.locked = snap.locked;
        room.config = snap.config;
        room.affiliations = affiliations;
        room.salt = snap.salt;
        room.subject = snap.subject;
        Ok(room)
    }
}
