//! vcard-temp (XEP-0054): any entity may read an account's vCard (an empty
//! `<vCard/>` when none is stored); only the account may replace its own.
//! Stored whole in the `vcard` key-value store, bounded by `im.max_vcard_bytes`.

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::router::{account_key, bounce, Router};
use crate::xml::{iq_result, stanza_type};

pub const NS: &str = "vcard-temp";
const KV: &str = "vcard";
const KEY: &str = "vcard";

/// vCard requests to `account`'s bare JID. `None` when `payload` is not one.
pub async fn handle_iq(
    router: &Router,
    iq: &Element,
    payload: &Element,
    from: &Jid,
    account: &BareJid,
) -> Option<Vec<Element>> {
    if !payload.is("vCard", NS) {
        return None;
    }
    let (host, user) = account_key(account)?;
    Some(match stanza_type(iq) {
        "get" => match router.store.kv_get(host, user, KV, KEY).await {
            Ok(stored) => {
                let card = stored
                    .and_then(|s| s.parse::<Element>().ok())
                    .filter(|e| e.is("vCard", NS))
                    .unwrap_or_else(|| Element::builder("vCard", NS).build());
                vec![iq_result(iq, Some(account.as_str()), Some(card))]
            }
            Err(e) => {
                tracing::error!("cannot read vCard of {account}: {e}");
                bounce(iq, Cond::InternalServerError, None)
            }
        },
        "set" => {
            if from.to_bare() != *account {
                return Some(bounce(
                    iq,
                    Cond::Forbidden,
                    Some("Only the account may change its vCard"),
                ));
            }
            let xml = String::from(payload);
            if xml.len() > router.settings.im.im.max_vcard_bytes {
                return Some(bounce(
                    iq,
                    Cond::NotAcceptable,
                    Some("The vCard is larger than this server accepts"),
                ));
            }
            match router.store.kv_set(host, user, KV, KEY, &xml).await {
                Ok(()) => vec![iq_result(iq, Some(account.as_str()), None)],
                Err(e) => {
                    tracing::error!("cannot save vCard of {account}: {e}");
                    bounce(iq, Cond::InternalServerError, None)
                }
            }
        }
        _ => Vec::new(),
    })
}
