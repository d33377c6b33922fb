//! Last activity (XEP-0012): the server's uptime on its own JID; for an
//! account, 0 while it is online, else the time since its last logout and
//! the status it left with, for the account itself and the contacts
//! subscribed to its presence (`forbidden` for anyone else). The logout is
//! recorded in the `last` key-value store when an account's last session
//! ends, with the status of that session's last unavailable presence.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jid::BareJid;
use minidom::Element;
use serde::{Deserialize, Serialize};
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{
    account_key, Ctx, Declarations, Flow, Hook, IqRequest, IqScope, Module, Outs, SessionRef,
};
use crate::hub::sessions::SessionId;
use crate::modules::presence::subscribed_from;
use crate::xml::{nc, stanza_type, CLIENT};

pub const NS: &str = "jabber:iq:last";
const KV: &str = "last";
const KEY: &str = "logout";

#[derive(Serialize, Deserialize)]
struct Logout {
    stamp: DateTime<Utc>,
    status: Option<String>,
}

/// The status each session left with, until it ends.
#[derive(Default)]
pub struct Last {
    statuses: Mutex<HashMap<SessionId, String>>,
}

fn query(seconds: u64, status: Option<&str>) -> Element {
    let mut b = Element::builder("query", NS).attr(nc("seconds"), seconds.to_string());
    if let Some(s) = status {
        b = b.append(s);
    }
    b.build()
}

impl Last {
    fn statuses(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, String>> {
        self.statuses.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn record(ctx: &Ctx<'_>, account: &BareJid, status: Option<String>) {
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
        if let Err(e) = ctx.store.kv_set(host, user, KV, KEY, &json).await {
            tracing::error!("cannot record last activity of {account}: {e}");
        }
    }

    async fn account(&self, ctx: &Ctx<'_>, req: &IqRequest<'_>, account: &BareJid) -> Outs {
        if !req.is_get() {
            return req.error(Cond::BadRequest, Some("Last activity is read-only"));
        }
        let Some((host, user)) = account_key(account) else {
            return req.unsupported();
        };
        let requester = req.from.to_bare();
        let allowed = requester == *account
            || matches!(
                ctx.store.roster_get_item(host, user, requester.as_str()).await,
                Ok(Some(item)) if subscribed_from(item.subscription)
            );
        if !allowed {
            return req.error(
                Cond::Forbidden,
                Some(
                    "Only contacts subscribed to this account's presence may see its last activity",
                ),
            );
        }
        if !ctx.sessions.available_resources(account).is_empty() {
            return req.result(Some(account.as_str()), Some(query(0, None)));
        }
        let stored = match ctx.store.kv_get(host, user, KV, KEY).await {
            Ok(s) => s.and_then(|s| serde_json::from_str::<Logout>(&s).ok()),
            Err(e) => {
                tracing::error!("cannot read last activity of {account}: {e}");
                return req.error(Cond::InternalServerError, None);
            }
        };
        match stored {
            Some(l) => {
                let secs = (Utc::now() - l.stamp).num_seconds().max(0) as u64;
                req.result(
                    Some(account.as_str()),
                    Some(query(secs, l.status.as_deref())),
                )
            }
            None => req.error(Cond::ItemNotFound, Some("No recorded activity")),
        }
    }
}

#[async_trait]
impl Module for Last {
    fn name(&self) -> &'static str {
        "last"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Server, NS)
            .iq(IqScope::Account, NS)
            .hook(Hook::Outbound)
            .hook(Hook::Session)
            .server_feature(NS)
            .account_feature(NS);
    }

    async fn iq(&self, ctx: &Ctx<'_>, scope: IqScope, req: IqRequest<'_>) -> Outs {
        if req.payload.name() != "query" {
            return req.unsupported();
        }
        match (scope, req.account) {
            (IqScope::Account, Some(account)) => self.account(ctx, &req, account).await,
            _ if req.is_get() => req.result(
                None,
                Some(query(ctx.server.started.elapsed().as_secs(), None)),
            ),
            _ => req.unsupported(),
        }
    }

    async fn outbound(
        &self,
        _: &Ctx<'_>,
        session: &SessionRef,
        stanza: &Element,
        _: &mut Outs,
    ) -> Flow {
        if stanza.name() == "presence"
            && stanza.attr("to").is_none()
            && stanza_type(stanza) == "unavailable"
        {
            if let Some(status) = stanza.get_child("status", CLIENT) {
                self.statuses().insert(session.id, status.text());
            }
        }
        Flow::Continue
    }

    async fn ended(&self, ctx: &Ctx<'_>, session: &SessionRef) -> Outs {
        let status = self.statuses().remove(&session.id);
        let others = ctx
            .sessions
            .resources_where(&session.bare, |e| e.id() != session.id);
        if others.is_empty() {
            Self::record(ctx, &session.bare, status).await;
        }
        Vec::new()
    }
}
