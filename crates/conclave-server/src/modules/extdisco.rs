//! External service discovery (XEP-0215, `urn:xmpp:extdisco:2`): the
//! `[[external_service]]` entries of the configuration (STUN, TURN, ...).
//! Services with credentials are marked restricted; their credentials are
//! given to local users only. (The elements are built by hand: the
//! service types of xmpp-parsers' `extdisco` are a closed list, and the
//! configuration may name any type, `ftp` for example.)

use async_trait::async_trait;
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::config::ExternalServiceSection;
use crate::hub::module::{route_all, Ctx, Declarations, IqRequest, IqScope, Module, Outs};
use crate::xml::{error_reply, iq_result, nc, stanza_type};

pub const NS: &str = "urn:xmpp:extdisco:2";

/// The configured external services.
pub struct ExtDisco {
    pub services: Vec<ExternalServiceSection>,
}

#[async_trait]
impl Module for ExtDisco {
    fn name(&self) -> &'static str {
        "extdisco"
    }

    fn declare(&self, d: &mut Declarations) {
        d.iq(IqScope::Server, NS).server_feature(NS);
    }

    async fn iq(&self, ctx: &Ctx<'_>, _: IqScope, req: IqRequest<'_>) -> Outs {
        let local_user = ctx.is_local_user(req.from);
        match handle(req.stanza, req.payload, &self.services, local_user) {
            Some(replies) => route_all(replies),
            None => req.unsupported(),
        }
    }
}

fn bounce(iq: &Element, cond: Cond, text: Option<&str>) -> Vec<Element> {
    error_reply(iq, cond, text).into_iter().collect()
}

fn service(s: &ExternalServiceSection, with_credentials: bool) -> Element {
    let mut b = Element::builder("service", NS)
        .attr(nc("type"), s.type_.as_str())
        .attr(nc("host"), s.host.as_str());
    if let Some(p) = s.port {
        b = b.attr(nc("port"), p.to_string());
    }
    if let Some(t) = &s.transport {
        b = b.attr(nc("transport"), t.as_str());
    }
    if let Some(n) = &s.name {
        b = b.attr(nc("name"), n.as_str());
    }
    if s.username.is_some() {
        b = b.attr(nc("restricted"), "true");
    }
    if with_credentials {
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            b = b
                .attr(nc("username"), u.as_str())
                .attr(nc("password"), p.as_str());
        }
    }
    b.build()
}

/// Services and credentials requests to the server. `None` when `payload`
/// is not XEP-0215.
pub fn handle(
    iq: &Element,
    payload: &Element,
    services: &[ExternalServiceSection],
    local_user: bool,
) -> Option<Vec<Element>> {
    if payload.ns() != NS || stanza_type(iq) != "get" {
        return None;
    }
    let wanted = payload.attr("type");
    match payload.name() {
        "services" => {
            let list = services
                .iter()
                .filter(|s| wanted.is_none_or(|t| t == s.type_))
                .map(|s| service(s, false));
            let mut b = Element::builder("services", NS);
            if let Some(t) = wanted {
                b = b.attr(nc("type"), t);
            }
            Some(vec![iq_result(iq, None, Some(b.append_all(list).build()))])
        }
        "credentials" => {
            if !local_user {
                return Some(bounce(iq, Cond::Forbidden, Some("Local users only")));
            }
            let asked: Vec<&Element> = payload.children().filter(|c| c.is("service", NS)).collect();
            let found: Vec<Element> = services
                .iter()
                .filter(|s| s.username.is_some())
                .filter(|s| {
                    asked.iter().any(|a| {
                        a.attr("host") == Some(s.host.as_str())
                            && a.attr("type").is_none_or(|t| t == s.type_)
                            && a.attr("port")
                                .is_none_or(|p| s.port.map(|x| x.to_string()).as_deref() == Some(p))
                    })
                })
                .map(|s| service(s, true))
                .collect();
            if found.is_empty() {
                return Some(bounce(
                    iq,
                    Cond::ItemNotFound,
                    Some("No restricted service matches"),
                ));
            }
            Some(vec![iq_result(
                iq,
                None,
                Some(
                    Element::builder("credentials", NS)
                        .append_all(found)
                        .build(),
                ),
            )])
        }
        _ => Some(bounce(iq, Cond::BadRequest, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Vec<ExternalServiceSection> {
        vec![
            ExternalServiceSection {
                type_: "stun".into(),
                host: "stun.h".into(),
                port: Some(3478),
                transport: Some("udp".into()),
                ..Default::default()
            },
            ExternalServiceSection {
                type_: "turn".into(),
                host: "turn.h".into(),
                port: Some(3478),
                username: Some("u".into()),
                password: Some("p".into()),
                ..Default::default()
            },
        ]
    }

    fn iq(inner: &str) -> Element {
        format!("<iq xmlns='jabber:client' type='get' id='e' from='a@h/r' to='h'>{inner}</iq>")
            .parse()
            .unwrap()
    }

    #[test]
    fn lists_services_filtered_by_type_without_secrets() {
        let q = iq("<services xmlns='urn:xmpp:extdisco:2'/>");
        let r = handle(&q, q.children().next().unwrap(), &services(), true).unwrap();
        let list = r[0].get_child("services", NS).unwrap();
        assert_eq!(list.children().count(), 2);
        let turn = list
            .children()
            .find(|s| s.attr("type") == Some("turn"))
            .unwrap();
        assert_eq!(turn.attr("restricted"), Some("true"));
        assert!(turn.attr("password").is_none());
        let q = iq("<services xmlns='urn:xmpp:extdisco:2' type='stun'/>");
        let r = handle(&q, q.children().next().unwrap(), &services(), true).unwrap();
        let list = r[0].get_child("services", NS).unwrap();
        assert_eq!(list.children().count(), 1);
        assert_eq!(list.children().next().unwrap().attr("port"), Some("3478"));
    }

    #[test]
    fn credentials_for_local_users_only() {
        let q = iq("<credentials xmlns='urn:xmpp:extdisco:2'><service type='turn' host='turn.h'/></credentials>");
        let r = handle(&q, q.children().next().unwrap(), &services(), true).unwrap();
        let s = r[0]
            .get_child("credentials", NS)
            .and_then(|c| c.get_child("service", NS))
            .unwrap();
        assert_eq!(s.attr("username"), Some("u"));
        assert_eq!(s.attr("password"), Some("p"));
        let r = handle(&q, q.children().next().unwrap(), &services(), false).unwrap();
        assert_eq!(r[0].attr("type"), Some("error"));
        let q =
            iq("<credentials xmlns='urn:xmpp:extdisco:2'><service host='stun.h'/></credentials>");
        let r = handle(&q, q.children().next().unwrap(), &services(), true).unwrap();
        assert_eq!(r[0].attr("type"), Some("error"));
    }
}
