//! Private XML storage (XEP-0049): an account keeps XML fragments, keyed by
//! element name and namespace, readable and writable only by itself. The
//! reserved namespaces `jabber:client`, `jabber:server` and
//! `jabber:iq:private` are refused. Stored in the `private` key-value store.

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::router::{account_key, bounce, Router};
use crate::xml::{iq_result, stanza_type};

pub const NS: &str = "jabber:iq:private";
const KV: &str = "private";
const RESERVED: &[&str] = &["jabber:client", "jabber:server", NS];

/// The store key of a fragment: `{namespace}name`.
pub fn key(el: &Element) -> String {
    format!("{{{}}}{}", el.ns(), el.name())
}

/// Checks the children of a private XML query.
fn children(payload: &Element) -> Result<Vec<&Element>, (Cond, &'static str)> {
    let list: Vec<&Element> = payload.children().collect();
    if list.is_empty() {
        return Err((
            Cond::BadRequest,
            "A private XML query needs a child element",
        ));
    }
    if list.iter().any(|c| RESERVED.contains(&c.ns().as_str())) {
        return Err((
            Cond::NotAcceptable,
            "This namespace cannot be used for private XML storage",
        ));
    }
    Ok(list)
}

/// Private XML requests to `account`. `None` when `payload` is not one.
pub async fn handle_iq(
    router: &Router,
    iq: &Element,
    payload: &Element,
    from: &Jid,
    account: &BareJid,
) -> Option<Vec<Element>> {
    if !payload.is("query", NS) {
        return None;
    }
    if from.to_bare() != *account {
        return Some(bounce(
            iq,
            Cond::Forbidden,
            Some("Private XML is available to its owner only"),
        ));
    }
    let (host, user) = account_key(account)?;
    let list = match children(payload) {
        Ok(l) => l,
        Err((cond, text)) => return Some(bounce(iq, cond, Some(text))),
    };
    let limits = &router.settings.im.im;
    Some(match stanza_type(iq) {
        "get" => {
            if list.len() != 1 {
                return Some(bounce(
                    iq,
                    Cond::BadRequest,
                    Some("Ask for one element at a time"),
                ));
            }
            let wanted = list[0];
            let stored = match router.store.kv_get(host, user, KV, &key(wanted)).await {
                Ok(s) => s.and_then(|s| s.parse::<Element>().ok()),
                Err(e) => {
                    tracing::error!("cannot read private XML of {account}: {e}");
                    return Some(bounce(iq, Cond::InternalServerError, None));
                }
            };
            let child = stored.unwrap_or_else(|| Element::bare(wanted.name(), wanted.ns()));
            let q = Element::builder("query", NS).append(child).build();
            vec![iq_result(iq, Some(account.as_str()), Some(q))]
        }
        "set" => {
            let existing = match router.store.kv_list(host, user, KV).await {
                Ok(items) => items.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
                Err(e) => {
                    tracing::error!("cannot read private XML of {account}: {e}");
                    return Some(bounce(iq, Cond::InternalServerError, None));
                }
            };
            let mut count = existing.len();
            let mut items = Vec::new();
            for c in list {
                let xml = String::from(c);
                if xml.len() > limits.max_private_bytes {
                    return Some(bounce(
                        iq,
                        Cond::NotAcceptable,
                        Some("Private XML item too large"),
                    ));
                }
                let k = key(c);
                if !existing.contains(&k) {
                    count += 1;
                }
                items.push((k, xml));
            }
            if count > limits.max_private_items {
                return Some(bounce(
                    iq,
                    Cond::ResourceConstraint,
                    Some("Too many private XML items"),
                ));
            }
            for (k, xml) in items {
                if let Err(e) = router.store.kv_set(host, user, KV, &k, &xml).await {
                    tracing::error!("cannot save private XML of {account}: {e}");
                    return Some(bounce(iq, Cond::InternalServerError, None));
                }
            }
            vec![iq_result(iq, Some(account.as_str()), None)]
        }
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_reserved_namespaces() {
        let q: Element =
            "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>"
                .parse()
                .unwrap();
        let c = children(&q).unwrap();
        assert_eq!(key(c[0]), "{storage:bookmarks}storage");
        for ns in RESERVED {
            let q: Element = format!("<query xmlns='jabber:iq:private'><x xmlns='{ns}'/></query>")
                .parse()
                .unwrap();
            assert_eq!(children(&q).unwrap_err().0, Cond::NotAcceptable, "{ns}");
        }
        let empty: Element = "<query xmlns='jabber:iq:private'/>".parse().unwrap();
        assert_eq!(children(&empty).unwrap_err().0, Cond::BadRequest);
    }
}
