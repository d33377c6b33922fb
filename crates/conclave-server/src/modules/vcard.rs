//! vcard-temp (XEP-0054): any entity may read an account's vCard (an empty
//! `<vCard/>` when none is stored); only the account may replace its own.
//! Stored whole in the `vcard` key-value store, bounded by `im.max_vcard_bytes`.

use async_trait::async_trait;
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{account_key, Ctx, Declarations, IqRequest, IqScope, Module, Outs};

pub const NS: &str = "vcard-temp";
const KV: &str = "vcard";
const KEY: &str = "vcard";

pub struct Vcard {
    /// Largest vCard an account may store, in bytes.
    pub max_bytes: usize,
}

#[async_trait]
impl Module for Vcard {
    fn name(&self) -> &'static str {
        "vcard"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Account, NS)
            .server_feature(NS)
            .account_feature(NS);
    }

    async fn iq(&self, ctx: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        let (Some(account), true) = (req.account, req.payload.name() == "vCard") else {
            return req.unsupported();
        };
        let Some((host, user)) = account_key(account) else {
            return req.unsupported();
        };
        if req.is_get() {
            return match ctx.store.kv_get(host, user, KV, KEY).await {
                Ok(stored) => {
                    let card = stored
                        .and_then(|s| s.parse::<Element>().ok())
                        .filter(|e| e.is("vCard", NS))
                        .unwrap_or_else(|| Element::builder("vCard", NS).build());
                    req.result(Some(account.as_str()), Some(card))
                }
                Err(e) => {
                    tracing::error!("cannot read vCard of {account}: {e}");
                    req.error(Cond::InternalServerError, None)
                }
            };
        }
        if !req.is_own() {
            return req.error(
                Cond::Forbidden,
                Some("Only the account may change its vCard"),
            );
        }
        let xml = String::from(req.payload);
        if xml.len() > self.max_bytes {
            return req.error(
                Cond::NotAcceptable,
                Some("The vCard is larger than this server accepts"),
            );
        }
        match ctx.store.kv_set(host, user, KV, KEY, &xml).await {
            Ok(()) => req.result(Some(account.as_str()), None),
            Err(e) => {
                tracing::error!("cannot save vCard of {account}: {e}");
                req.error(Cond::InternalServerError, None)
            }
        }
    }
}
