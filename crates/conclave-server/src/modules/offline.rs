//! Offline messages (XEP-0160): a message of type normal or chat for an
//! account with no available resource is stored, up to a per-account limit,
//! and delivered with a delay stamp (XEP-0203) at the next initial presence.

use chrono::{DateTime, Utc};
use conclave_store::{StoreError, StoredStanza};
use jid::{BareJid, FullJid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::router::{account_key, bounce, Router};
use crate::xml::{nc, CLIENT};

const DELAY: &str = "urn:xmpp:delay";

/// Whether a message is worth keeping for later: it has a body or a
/// subject (chat-state notifications and receipts alone are not kept).
pub fn worth_storing(msg: &Element) -> bool {
    msg.has_child("body", CLIENT) || msg.has_child("subject", CLIENT)
}

/// Stores a message for an account with no available resource. Returns
/// the error to send back when the account does not exist or its storage
/// is full.
pub async fn store(router: &Router, msg: Element, to: &BareJid) -> Vec<Element> {
    if !router.account_exists(to).await {
        return bounce(&msg, Cond::ServiceUnavailable, None);
    }
    if !worth_storing(&msg) {
        return Vec::new();
    }
    let Some((host, user)) = account_key(to) else {
        return Vec::new();
    };
    let stored = StoredStanza {
        xml: String::from(&msg),
        stamp: Utc::now(),
    };
    match router
        .store
        .offline_push(host, user, &stored, router.settings.max_offline_messages)
        .await
    {
        Ok(()) => Vec::new(),
        Err(StoreError::QuotaExceeded) => bounce(
            &msg,
            Cond::ServiceUnavailable,
            Some("The recipient's offline message storage is full"),
        ),
        Err(e) => {
            tracing::error!("cannot store offline message for {to}: {e}");
            bounce(&msg, Cond::InternalServerError, None)
        }
    }
}

/// Adds the XEP-0203 delay element to a stored message.
pub fn with_delay(mut msg: Element, host: &str, stamp: DateTime<Utc>) -> Element {
    let delay = Element::builder("delay", DELAY)
        .attr(nc("from"), host)
        .attr(
            nc("stamp"),
            stamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .build();
    msg.append_child(delay);
    msg
}

/// Takes every stored message of the account and queues it for `session`.
pub async fn deliver(router: &Router, session: &FullJid) {
    let bare = session.to_bare();
    let Some((host, user)) = account_key(&bare) else {
        return;
    };
    let messages = match router.store.offline_take(host, user).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("cannot read offline messages of {bare}: {e}");
            return;
        }
    };
    for m in messages {
        match m.xml.parse::<Element>() {
            Ok(el) => {
                router.send_to_full(session, with_delay(el, host, m.stamp));
            }
            Err(e) => tracing::warn!("dropping unreadable offline message of {bare}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_stamp_is_added() {
        let m: Element = "<message xmlns='jabber:client' to='a@b'><body>x</body></message>"
            .parse()
            .unwrap();
        let stamp = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let d = with_delay(m, "b", stamp);
        let delay = d.get_child("delay", DELAY).unwrap();
        assert_eq!(delay.attr("from"), Some("b"));
        assert_eq!(delay.attr("stamp"), Some("2024-01-02T03:04:05.000Z"));
        let parsed = xmpp_parsers::delay::Delay::try_from(delay.clone()).unwrap();
        assert_eq!(parsed.stamp.0.timestamp(), stamp.timestamp());
    }

    #[test]
    fn only_messages_with_content_are_kept() {
        let chat_state: Element =
            "<message xmlns='jabber:client'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
                .parse()
                .unwrap();
        assert!(!worth_storing(&chat_state));
        let body: Element = "<message xmlns='jabber:client'><body>x</body></message>"
            .parse()
            .unwrap();
        assert!(worth_storing(&body));
    }
}
