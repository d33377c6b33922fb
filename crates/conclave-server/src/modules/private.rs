//! Private XML storage (XEP-0049): an account keeps XML fragments, keyed by
//! element name and namespace, readable and writable only by itself. The
//! reserved namespaces `jabber:client`, `jabber:server` and
//! `jabber:iq:private` are refused. Stored in the `private` key-value store.

use async_trait::async_trait;
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{account_key, Ctx, Declarations, IqRequest, IqScope, Module, Outs};

pub const NS: &str = "jabber:iq:private";
const KV: &str = "private";
const RESERVED: &[&str] = &["jabber:client", "jabber:server", NS];

/// Bounds per account.
pub struct Private {
    /// Largest item, in bytes.
    pub max_bytes: usize,
    /// Most items.
    pub max_items: usize,
}

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

#[async_trait]
impl Module for Private {
    fn name(&self) -> &'static str {
        "private"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Account, NS).server_feature(NS);
    }

    async fn iq(&self, ctx: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        let (Some(account), true) = (req.account, req.payload.name() == "query") else {
            return req.unsupported();
        };
        if !req.is_own() {
            return req.error(
                Cond::Forbidden,
                Some("Private XML is available to its owner only"),
            );
        }
        let Some((host, user)) = account_key(account) else {
            return req.unsupported();
        };
        let list = match children(req.payload) {
            Ok(l) => l,
            Err((cond, text)) => return req.error(cond, Some(text)),
        };
        if req.is_get() {
            let [wanted] = list.as_slice() else {
                return req.error(Cond::BadRequest, Some("Ask for one element at a time"));
            };
            let stored = match ctx.store.kv_get(host, user, KV, &key(wanted)).await {
                Ok(s) => s.and_then(|s| s.parse::<Element>().ok()),
                Err(e) => {
                    tracing::error!("cannot read private XML of {account}: {e}");
                    return req.error(Cond::InternalServerError, None);
                }
            };
            let child = stored.unwrap_or_else(|| Element::bare(wanted.name(), wanted.ns()));
            let q = Element::builder("query", NS).append(child).build();
            return req.result(Some(account.as_str()), Some(q));
        }
        let existing = match ctx.store.kv_list(host, user, KV).await {
            Ok(items) => items.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!("cannot read private XML of {account}: {e}");
                return req.error(Cond::InternalServerError, None);
            }
        };
        let mut count = existing.len();
        let mut items = Vec::new();
        for c in list {
            let xml = String::from(c);
            if xml.len() > self.max_bytes {
                return req.error(Cond::NotAcceptable, Some("Private XML item too large"));
            }
            let k = key(c);
            if !existing.contains(&k) {
                count += 1;
            }
            items.push((k, xml));
        }
        if count > self.max_items {
            return req.error(Cond::ResourceConstraint, Some("Too many private XML items"));
        }
        for (k, xml) in items {
            if let Err(e) = ctx.store.kv_set(host, user, KV, &k, &xml).await {
                tracing::error!("cannot save private XML of {account}: {e}");
                return req.error(Cond::InternalServerError, None);
            }
        }
        req.result(Some(account.as_str()), None)
    }
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
