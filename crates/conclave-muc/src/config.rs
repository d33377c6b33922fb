//! A room's configuration (the muc#roomconfig form's values), with
//! Prosody's defaults.

use serde::{Deserialize, Serialize};

use crate::role::Role;

/// Who may see occupants' real JIDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Whois {
    Moderators,
    Anyone,
}

/// Who may send private messages to occupants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowPm {
    Anyone,
    Participants,
    Moderators,
    None,
}

impl AllowPm {
    pub fn as_str(self) -> &'static str {
        match self {
            AllowPm::Anyone => "anyone",
            AllowPm::Participants => "participants",
            AllowPm::Moderators => "moderators",
            AllowPm::None => "none",
        }
    }
    pub fn parse(s: &str) -> Option<AllowPm> {
        Some(match s {
            "anyone" => AllowPm::Anyone,
            "participants" => AllowPm::Participants,
            "moderators" => AllowPm::Moderators,
            "none" => AllowPm::None,
            _ => return None,
        })
    }
    /// May an occupant of role `role` send a private message?
    pub fn allows(self, role: Role) -> bool {
        match self {
            AllowPm::Anyone => role >= Role::Visitor,
            AllowPm::Participants => role >= Role::Participant,
            AllowPm::Moderators => role >= Role::Moderator,
            AllowPm::None => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomConfig {
    pub name: String,
    pub description: String,
    pub persistent: bool,
    pub public: bool,
    pub members_only: bool,
    pub moderated: bool,
    /// `Some` when password-protected.
    pub password: Option<String>,
    pub whois: Whois,
    /// Occupants (participants) may change the subject.
    pub change_subject: bool,
    pub allow_invites: bool,
    pub allow_pm: AllowPm,
    /// Roles whose presence is broadcast to the other occupants.
    pub presence_broadcast: Vec<Role>,
    pub history_length: usize,
    pub default_history_messages: usize,
    pub language: String,
    /// Messages are archived (status 170).
    pub logging: bool,
}

impl Default for RoomConfig {
    fn default() -> RoomConfig {
        RoomConfig {
            name: String::new(),
            description: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            moderated: false,
            password: None,
            whois: Whois::Moderators,
            change_subject: false,
            allow_invites: false,
            allow_pm: AllowPm::Anyone,
            presence_broadcast: vec![Role::Moderator, Role::Participant, Role::Visitor],
            history_length: 20,
            default_history_messages: 20,
            language: String::new(),
            logging: false,
        }
    }
}

impl RoomConfig {
    pub fn non_anonymous(&self) -> bool {
        self.whois == Whois::Anyone
    }
    pub fn broadcasts(&self, role: Role) -> bool {
        self.presence_broadcast.contains(&role)
    }
}
