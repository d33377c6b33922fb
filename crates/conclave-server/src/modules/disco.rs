//! Service discovery (XEP-0030) for the server itself (identity server/im,
//! the features every module declared, their forms; items: the services at
//! their own domains) and, on their behalf, for accounts (identity
//! account/registered and the account features the modules declared).

use async_trait::async_trait;
use minidom::Element;
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{Ctx, Declarations, DiscoInfo, IqRequest, IqScope, Module, Outs};

pub const INFO: &str = "http://jabber.org/protocol/disco#info";
pub const ITEMS: &str = "http://jabber.org/protocol/disco#items";

pub struct Disco;

fn identity(category: &str, type_: &str, name: Option<&str>) -> Identity {
    Identity {
        category: category.to_owned(),
        type_: type_.to_owned(),
        lang: None,
        name: name.map(str::to_owned),
    }
}

fn features(vars: &[&str]) -> std::collections::BTreeSet<String> {
    vars.iter().map(|v| (*v).to_owned()).collect()
}

/// The server's disco#info result.
pub fn server_info(disco: &DiscoInfo) -> Element {
    DiscoInfoResult {
        node: None,
        identities: vec![identity("server", "im", Some("Conclave"))],
        features: features(&disco.server_features),
        extensions: disco.server_forms.clone(),
    }
    .into()
}

/// An account's disco#info result.
pub fn account_info(disco: &DiscoInfo) -> Element {
    DiscoInfoResult {
        node: None,
        identities: vec![identity("account", "registered", None)],
        features: features(&disco.account_features),
        extensions: Vec::new(),
    }
    .into()
}

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
                if req.payload.attr("node").is_some() {
                    return req.error(Cond::ItemNotFound, None);
                }
                if info {
                    return req.result(None, Some(server_info(disco)));
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
            _ if info => req.result(None, Some(account_info(disco))),
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
