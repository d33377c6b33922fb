//! Service discovery (XEP-0030) for the server itself (identity server/im,
//! the features every module declared, their forms; items: the services at
//! their own domains) and, on their behalf, for accounts (identity
//! account/registered and the account features the modules declared).

use async_trait::async_trait;
use xmpp_parsers::disco::{DiscoItemsResult, Item};
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{Ctx, Declarations, IqRequest, IqScope, Module, Outs};

pub const INFO: &str = "http://jabber.org/protocol/disco#info";
pub const ITEMS: &str = "http://jabber.org/protocol/disco#items";

pub struct Disco;

#[async_trait]
impl Module for Disco {
    fn name(&self) -> &'static str {
        "disco"
    }

    fn declare(&self, d: &mut Declarations) {
        for ns in [INFO, ITEMS] {
            d.iq(IqScope::Server, ns)
                .iq(IqScope::Account, ns)
                .server_feature(ns)
                .account_feature(ns);
        }
    }

    async fn iq(&self, ctx: &Ctx<'_>, scope: IqScope, req: IqRequest<'_>) -> Outs {
        if !req.is_get() || req.payload.name() != "query" {
            return req.unsupported();
        }
        let disco = &ctx.server.disco;
        let info = req.payload.ns() == INFO;
        match scope {
            IqScope::Server => {
                if info {
                    // The node of the server's caps names its own info.
                    let node = req.payload.attr("node");
                    if node.is_some() && node != disco.caps_node().as_deref() {
                        return req.error(Cond::ItemNotFound, None);
                    }
                    let mut result = disco.server_result();
                    result.node = node.map(str::to_owned);
                    return req.result(None, Some(result.into()));
                }
                if req.payload.attr("node").is_some() {
                    return req.error(Cond::ItemNotFound, None);
                }
                let items = DiscoItemsResult {
                    node: None,
                    items: disco
                        .items
                        .iter()
                        .filter_map(|(jid, name)| {
                            Some(Item {
                                jid: jid::Jid::new(jid).ok()?,
                                node: None,
                                name: Some(name.clone()),
                            })
                        })
                        .collect(),
                    rsm: None,
                };
                req.result(None, Some(items.into()))
            }
            _ if info => req.result(None, Some(disco.account_result().into())),
            _ => {
                let items = DiscoItemsResult {
                    node: None,
                    items: Vec::new(),
                    rsm: None,
                };
                req.result(None, Some(items.into()))
            }
        }
    }
}
