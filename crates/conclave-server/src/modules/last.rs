//! Last activity (XEP-0012): the server's uptime on its own JID; for an
//! account, 0 while it is online, else the time since its last logout and
//! the status it left with, for the account itself and the contacts
//! subscribed to its presence (`forbidden` for anyone else). The logout is
//! recorded in the `last` key-value store.

use chrono::{DateTime, Utc};
use jid::{BareJid, Jid};
use minidom::Element;
use serde::{Deserialize, Serialize};
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::modules::presence::subscribed_from;
use crate::hub::router::{account_key, bounce, Router};
use crate::xml::{iq_result, nc, stanza_type};

pub const NS: &str = "jabber:iq:last";
const KV: &str = "last";
const KEY: &str = "logout";

#[derive(Serialize, Deserialize)]
struct Logout {
    stamp: DateTime<Utc>,
    status: Option<String>,
}

fn query(seconds: u64, status: Option<&str>) -> Element {
    let mut b = Element::builder("query", NS).attr(nc("seconds"), seconds.to_string());
    if let Some(s) = status {
        b = b.append(s);
    }
    b.build()
}

/// The server's uptime, `None` when `payload` is not a last activity query.
pub fn handle_server(
    iq: &Element,
    payload: &Element,
    started: std::time::Instant,
) -> Option<Element> {
    if stanza_type(iq) != "get" || !payload.is("query", NS) {
        return None;
    }
    Some(iq_result(
        iq,
        None,
        Some(query(started.elapsed().as_secs(), None)),
    ))
}

/// Records the logout of an account's last session.
pub async fn record(router: &Router, account: &BareJid, status: Option<String>) {
    let Some((host, user)) = account_key(account) else {
        return;
    };
    let entry = Logout {
        stamp: Utc::now(),
        status,
    };
    let Ok(json) = serde_json::to_string(&entry) else {
        return;
    };
    if let Err(e) = router.store.kv_set(host, user, KV, KEY, &json).await {
        tracing::error!("cannot record last activity of {account}: {e}");
    }
}

/// A last activity query to an account. `None` when `payload` is not one.
pub async fn handle_account(
    router: &Router,
    iq: &Element,
    payload: &Element,
    from: &Jid,
    account: &BareJid,
) -> Option<Vec<Element>> {
    if !payload.is("query", NS) {
        return None;
    }
    if stanza_type(iq) != "get" {
        return Some(bounce(
            iq,
            Cond::BadRequest,
            Some("Last activity is read-only"),
        ));
    }
    let (host, user) = account_key(account)?;
    let requester = from.to_bare();
    let allowed = requester == *account
        || matches!(
            router.store.roster_get_item(host, user, requester.as_str()).await,
            Ok(Some(item)) if subscribed_from(item.subscription)
        );
    if !allowed {
        return Some(bounce(
            iq,
            Cond::Forbidden,
            Some("Only contacts subscribed to this account's presence may see its last activity"),
        ));
    }
    if !router.available_resources(account).is_empty() {
        return Some(vec![iq_result(
            iq,
            Some(account.as_str()),
            Some(query(0, None)),
        )]);
    }
    let stored = match router.store.kv_get(host, user, KV, KEY).await {
        Ok(s) => s.and_then(|s| serde_json::from_str::<Logout>(&s).ok()),
        Err(e) => {
            tracing::error!("cannot read last activity of {account}: {e}");
            return Some(bounce(iq, Cond::InternalServerError, None));
        }
    };
    Some(match stored {
        Some(l) => {
            let secs = (Utc::now() - l.stamp).num_seconds().max(0) as u64;
            vec![iq_result(
                iq,
                Some(account.as_str()),
                Some(query(secs, l.status.as_deref())),
            )]
        }
        None => bounce(iq, Cond::ItemNotFound, Some("No recorded activity")),
    })
}
