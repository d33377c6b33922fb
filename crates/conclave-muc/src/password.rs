//! Password-protected rooms: a join must carry the room's secret.

use minidom::Element;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use crate::affiliation::Affiliation;
use crate::errors::StanzaErr;
use crate::room::Room;
use crate::xml::NS_MUC;

impl Room {
    /// Everyone entering a password-protected room gives the password,
    /// owners included, as in Prosody.
    pub(crate) fn check_password(
        &self,
        _aff: Affiliation,
        muc_x: Option<&Element>,
    ) -> Result<(), StanzaErr> {
        let Some(secret) = &self.config.password else {
            return Ok(());
        };
        // Read by hand, like <history/>: a bad history limit must not
        // make xmpp-parsers' `Muc` lose the password.
        let given = muc_x
            .and_then(|x| x.get_child("password", NS_MUC))
            .map(|p| p.text());
        if given.as_deref() == Some(secret.as_str()) {
            Ok(())
        } else {
            Err(
                StanzaErr::new(ErrorType::Auth, DefinedCondition::NotAuthorized)
                    .with_text("A password is required to enter this room"),
            )
        }
    }
}
