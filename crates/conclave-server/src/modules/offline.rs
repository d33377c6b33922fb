//! Offline messages (XEP-0160): a message of type normal or chat for an
//! account with no available resource is stored, up to a per-account limit,
//! and delivered with a delay stamp (XEP-0203) at the next initial presence.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use conclave_store::{StoreError, StoredStanza};
use jid::BareJid;
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{
    account_key, error, Ctx, Declarations, Hook, Module, Out, Outs, SessionRef,
};
use crate::xml::{nc, CLIENT};

const DELAY: &str = "urn:xmpp:delay";

/// Offline storage, bounded per account.
pub struct Offline {
    /// Most messages kept per account.
    pub max_messages: usize,
}

/// Whether a message is worth keeping for later: it has a body or a
/// subject (chat-state notifications and receipts alone are not kept).
pub fn worth_storing(msg: &Element) -> bool {
    msg.has_child("body", CLIENT) || msg.has_child("subject", CLIENT)
}

/// Adds the XEP-0203 delay element to a stored message. Built by hand:
/// xmpp-parsers' `Delay` writes the stamp with a `+00:00` offset, and the
/// stamp keeps XEP-0082's `Z` form with milliseconds.
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

/// Takes every stored message of the account, stamped, for `session`.
pub async fn deliver(ctx: &Ctx<'_>, session: &SessionRef) -> Outs {
    let Some((host, user)) = account_key(&session.bare) else {
        return Vec::new();
    };
    let messages = match ctx.store.offline_take(host, user).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("cannot read offline messages of {}: {e}", session.bare);
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for m in messages {
        match m.xml.parse::<Element>() {
            Ok(el) => out.push(Out::Local(
                session.full.clone(),
                with_delay(el, host, m.stamp),
            )),
            Err(e) => {
                tracing::warn!(
                    "dropping unreadable offline message of {}: {e}",
                    session.bare
                )
            }
        }
    }
    out
}

#[async_trait]
impl Module for Offline {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn declare(&self, d: &mut Declarations) {
        d.hook(Hook::Undeliverable)
            .server_feature("msgoffline")
            .server_feature(DELAY);
    }

    /// Stores a message for an account with no available resource; the
    /// error when the account does not exist or its storage is full.
    async fn undeliverable(&self, ctx: &Ctx<'_>, msg: &Element, to: &BareJid) -> Option<Outs> {
        if !ctx.account_exists(to).await {
            return Some(error(msg, Cond::ServiceUnavailable, None));
        }
        if !worth_storing(msg) {
            return Some(Vec::new());
        }
        let (host, user) = account_key(to)?;
        let stored = StoredStanza {
            xml: String::from(msg),
            stamp: Utc::now(),
        };
        Some(
            match ctx
                .store
                .offline_push(host, user, &stored, self.max_messages)
                .await
            {
                Ok(()) => Vec::new(),
                Err(StoreError::QuotaExceeded) => error(
                    msg,
                    Cond::ServiceUnavailable,
                    Some("The recipient's offline message storage is full"),
                ),
                Err(e) => {
                    tracing::error!("cannot store offline message for {to}: {e}");
                    error(msg, Cond::InternalServerError, None)
                }
            },
        )
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
