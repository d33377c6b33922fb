//! The loaded modules and the one typed dispatch over them: the IQ tables
//! (one per [`IqScope`], keyed by payload namespace), the hook lists, and
//! the server's discovery information gathered from their declarations.

use std::collections::HashMap;
use std::sync::Arc;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::module::{
    error, Ctx, Declarations, DiscoInfo, Flow, Hook, IqRequest, IqScope, Module, Outs, SessionRef,
};
use crate::xml::stanza_type;

/// The modules of a running server.
pub struct Modules {
    list: Vec<Arc<dyn Module>>,
    iq: HashMap<IqScope, HashMap<&'static str, usize>>,
    hooks: HashMap<Hook, Vec<usize>>,
    disco: DiscoInfo,
    stream_features: Vec<Element>,
}

impl Modules {
    /// Loads `list` in order (hooks run in this order). Two modules
    /// answering the same namespace in the same scope is an error.
    pub fn new(list: Vec<Arc<dyn Module>>) -> Result<Modules, String> {
        let mut iq: HashMap<IqScope, HashMap<&'static str, usize>> = HashMap::new();
        let mut hooks: HashMap<Hook, Vec<usize>> = HashMap::new();
        let mut disco = DiscoInfo::default();
        let mut stream_features = Vec::new();
        for (i, m) in list.iter().enumerate() {
            let mut d = Declarations::default();
            m.declare(&mut d);
            for (scope, ns) in d.iq {
                if let Some(other) = iq.entry(scope).or_default().insert(ns, i) {
                    return Err(format!(
                        "modules {} and {} both answer {ns} in {scope:?} scope",
                        list[other].name(),
                        m.name(),
                    ));
                }
            }
            for h in d.hooks {
                let subscribers = hooks.entry(h).or_default();
                if !subscribers.contains(&i) {
                    subscribers.push(i);
                }
            }
            for f in d.server_features {
                if !disco.server_features.contains(&f) {
                    disco.server_features.push(f);
                }
            }
            for f in d.account_features {
                if !disco.account_features.contains(&f) {
                    disco.account_features.push(f);
                }
            }
            disco.server_forms.extend(d.server_forms);
            stream_features.extend(d.stream_features);
        }
        Ok(Modules {
            list,
            iq,
            hooks,
            disco,
            stream_features,
        })
    }

    /// The disco#info gathered from the modules' declarations.
    pub fn disco(&self) -> &DiscoInfo {
        &self.disco
    }

    /// The stream features the modules offer after authentication.
    pub fn stream_features(&self) -> &[Element] {
        &self.stream_features
    }

    fn subscribers(&self, hook: Hook) -> impl Iterator<Item = &Arc<dyn Module>> {
        self.hooks
            .get(&hook)
            .into_iter()
            .flatten()
            .map(|&i| &self.list[i])
    }

    fn handler(&self, scope: IqScope, ns: &str) -> Option<&Arc<dyn Module>> {
        let i = *self.iq.get(&scope)?.get(ns)?;
        self.list.get(i)
    }

    /// An IQ `get`/`set` to a local host. Own-scope handlers answer a
    /// local user's session that addresses its own server.
    pub async fn server_iq(&self, ctx: &Ctx<'_>, stanza: &Element, from: &Jid, to: &Jid) -> Outs {
        let Some(payload) = stanza.children().next() else {
            return error(stanza, Cond::BadRequest, Some("IQ without payload"));
        };
        let ns = payload.ns();
        let mut req = IqRequest {
            stanza,
            payload,
            from,
            to,
            account: None,
        };
        if let Some(m) = self.handler(IqScope::Server, &ns) {
            return m.iq(ctx, IqScope::Server, req).await;
        }
        let own = from.to_bare();
        if from.resource().is_some() && ctx.is_local_user(from) && to.domain() == from.domain() {
            if let Some(m) = self.handler(IqScope::Own, &ns) {
                req.account = Some(&own);
                return m.iq(ctx, IqScope::Own, req).await;
            }
        }
        error(stanza, Cond::ServiceUnavailable, None)
    }

    /// An IQ `get`/`set` to a local account's bare JID, answered on its
    /// behalf.
    pub async fn account_iq(
        &self,
        ctx: &Ctx<'_>,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        account: &BareJid,
    ) -> Outs {
        let Some(payload) = stanza.children().next() else {
            return error(stanza, Cond::BadRequest, Some("IQ without payload"));
        };
        let own = from.to_bare() == *account;
        if !own && !ctx.account_exists(account).await {
            return error(stanza, Cond::ServiceUnavailable, Some("No such account"));
        }
        let ns = payload.ns();
        let req = IqRequest {
            stanza,
            payload,
            from,
            to,
            account: Some(account),
        };
        if own && from.resource().is_some() {
            if let Some(m) = self.handler(IqScope::Own, &ns) {
                return m.iq(ctx, IqScope::Own, req).await;
            }
        }
        if let Some(m) = self.handler(IqScope::Account, &ns) {
            return m.iq(ctx, IqScope::Account, req).await;
        }
        error(stanza, Cond::ServiceUnavailable, None)
    }

    /// Tells the modules a session was bound.
    pub async fn bound(&self, ctx: &Ctx<'_>, session: &SessionRef) {
        for m in self.subscribers(Hook::Session) {
            m.bound(ctx, session).await;
        }
    }

    /// Tells the modules a session ended.
    /// Tells the modules a session ended, in the reverse of their order, so
    /// that each still sees the state of the modules it builds on (presence
    /// still sees the block list it filters with).
    pub async fn ended(&self, ctx: &Ctx<'_>, session: &SessionRef) -> Outs {
        let mut out = Vec::new();
        for m in self.ended_order() {
            out.extend(m.ended(ctx, session).await);
        }
        out
    }

    fn ended_order(&self) -> Vec<&Arc<dyn Module>> {
        let mut list: Vec<_> = self.subscribers(Hook::Session).collect();
        list.reverse();
        list
    }

    /// Runs the outbound hooks on a stanza from a session.
    pub async fn outbound(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionRef,
        stanza: &Element,
        out: &mut Outs,
    ) -> Flow {
        for m in self.subscribers(Hook::Outbound) {
            if m.outbound(ctx, session, stanza, out).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Runs the inbound hooks on a stanza to a local account.
    pub async fn inbound(
        &self,
        ctx: &Ctx<'_>,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        out: &mut Outs,
    ) -> Flow {
        for m in self.subscribers(Hook::Inbound) {
            if m.inbound(ctx, stanza, from, to, out).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Whether any module refuses, from memory, a stanza from `from` to a
    /// connected `account`.
    pub fn refuses_in_memory(&self, account: &BareJid, from: &Jid) -> bool {
        self.subscribers(Hook::Inbound)
            .any(|m| m.refuses_in_memory(account, from))
    }

    /// Runs the delivered hooks.
    pub fn delivered(
        &self,
        ctx: &Ctx<'_>,
        msg: &Element,
        account: &BareJid,
        got: &[FullJid],
    ) -> Outs {
        let mut out = Vec::new();
        for m in self.subscribers(Hook::Delivered) {
            out.extend(m.delivered(ctx, msg, account, got));
        }
        out
    }

    /// Offers an undeliverable message to the modules; `None` when none
    /// took it.
    pub async fn undeliverable(
        &self,
        ctx: &Ctx<'_>,
        msg: &Element,
        account: &BareJid,
    ) -> Option<Outs> {
        for m in self.subscribers(Hook::Undeliverable) {
            if let Some(out) = m.undeliverable(ctx, msg, account).await {
                return Some(out);
            }
        }
        None
    }
}

/// Whether an IQ is a request that a handler answers.
pub fn is_request(iq: &Element) -> bool {
    matches!(stanza_type(iq), "get" | "set")
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    struct Two(&'static str);

    #[async_trait]
    impl Module for Two {
        fn name(&self) -> &'static str {
            self.0
        }
        fn declare(&self, d: &mut Declarations) {
            d.iq(IqScope::Server, "urn:example")
                .server_feature("urn:example")
                .hook(Hook::Outbound);
        }
    }

    #[test]
    fn one_namespace_one_handler_per_scope() {
        let err = Modules::new(vec![Arc::new(Two("a")), Arc::new(Two("b"))])
            .err()
            .expect("conflict");
        assert!(err.contains("a and b"), "{err}");
    }

    #[test]
    fn sessions_end_in_the_reverse_order() {
        struct Named(&'static str);
        #[async_trait]
        impl Module for Named {
            fn name(&self) -> &'static str {
                self.0
            }
            fn declare(&self, d: &mut Declarations) {
                d.hook(Hook::Session);
            }
        }
        let m = Modules::new(vec![
            Arc::new(Named("blocking")),
            Arc::new(Two("other")),
            Arc::new(Named("presence")),
        ])
        .unwrap();
        let names: Vec<_> = m.ended_order().iter().map(|m| m.name()).collect();
        assert_eq!(names, ["presence", "blocking"]);
    }

    #[test]
    fn features_are_gathered_once() {
        struct Other;
        #[async_trait]
        impl Module for Other {
            fn name(&self) -> &'static str {
                "other"
            }
            fn declare(&self, d: &mut Declarations) {
                d.iq(IqScope::Account, "urn:example")
                    .server_feature("urn:example")
                    .account_feature("urn:other");
            }
        }
        let m = Modules::new(vec![Arc::new(Two("a")), Arc::new(Other)]).unwrap();
        assert_eq!(m.disco().server_features, ["urn:example"]);
        assert_eq!(m.disco().account_features, ["urn:other"]);
        assert_eq!(m.subscribers(Hook::Outbound).count(), 1);
        assert_eq!(m.subscribers(Hook::Inbound).count(), 0);
    }
}
