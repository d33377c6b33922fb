//! The service itself (`conference.<host>`): its disco#info and
//! disco#items (public rooms), and stanzas to rooms that do not exist
//! (a join by someone allowed to create rooms creates one).

use std::sync::Arc;

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::disco::{DiscoItemsResult, Item};

use crate::disco::conference_identity;
use crate::errors::{error_reply, join_error, StanzaErr};
use crate::room::Room;
use crate::xml::{
    elem, set_attr, stanza_type, NS_CLIENT, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_OCCUPANT_ID,
    NS_PING,
};
use crate::{Context, CreationPolicy, RoomListing, ServiceConfig};

/// The service itself: its domain's disco, and stanzas to rooms that do
/// not exist.
pub struct Service {
    config: Arc<ServiceConfig>,
}

impl Service {
    pub fn new(config: Arc<ServiceConfig>) -> Service {
        Service { config }
    }

    pub fn config(&self) -> &Arc<ServiceConfig> {
        &self.config
    }

    /// Handles a stanza addressed to the service domain itself; returns the
    /// replies.
    pub fn handle_domain_stanza(
        &self,
        stanza: Element,
        public_rooms: &[RoomListing],
        _ctx: &Context,
    ) -> Vec<Element> {
        let t = stanza_type(&stanza);
        if stanza.name() != "iq" {
            if stanza.name() == "message" {
                return error_reply(&stanza, &StanzaErr::service_unavailable(), None)
                    .into_iter()
                    .collect();
            }
            return Vec::new();
        }
        if t != "get" {
            if t == "set" {
                return error_reply(&stanza, &StanzaErr::service_unavailable(), None)
                    .into_iter()
                    .collect();
            }
            return Vec::new();
        }
        let Some(payload) = stanza.children().next() else {
            return error_reply(&stanza, &StanzaErr::bad_request("Missing payload"), None)
                .into_iter()
                .collect();
        };
        let query = if payload.is("query", NS_DISCO_INFO) && payload.attr("node").is_none() {
            // Built by hand around a typed identity: `DiscoInfoResult`
            // keeps its features sorted, the service lists them in its own
            // order.
            let mut q = Element::bare("query", NS_DISCO_INFO);
            q.append_child(conference_identity("Chatrooms").into());
            for f in [
                NS_DISCO_INFO,
                NS_DISCO_ITEMS,
                NS_MUC,
                NS_OCCUPANT_ID,
                "http://jabber.org/protocol/muc#unique",
            ] {
                q.append_child(elem("feature", NS_DISCO_INFO, &[("var", f)]));
            }
            q
        } else if payload.is("query", NS_DISCO_ITEMS) && payload.attr("node").is_none() {
            let mut rooms: Vec<&RoomListing> = public_rooms.iter().collect();
            rooms.sort_by(|a, b| a.jid.cmp(&b.jid));
            let items = rooms
                .into_iter()
                .map(|r| Item {
                    jid: r.jid.clone().into(),
                    node: None,
                    name: r.name.clone(),
                })
                .collect();
            DiscoItemsResult {
                node: None,
                items,
                rsm: None,
            }
            .into()
        } else if payload.is("ping", NS_PING) {
            return vec![result(&stanza, None)];
        } else if payload.is("query", NS_DISCO_INFO) || payload.is("query", NS_DISCO_ITEMS) {
            return error_reply(&stanza, &StanzaErr::item_not_found(), None)
                .into_iter()
                .collect();
        } else {
            return error_reply(&stanza, &StanzaErr::service_unavailable(), None)
                .into_iter()
                .collect();
        };
        vec![result(&stanza, Some(query))]
    }

    /// May this user create rooms?
    pub fn may_create(&self, user: &BareJid) -> bool {
        if self.config.admins.contains(user) {
            return true;
        }
        match self.config.creation {
            CreationPolicy::Anyone => true,
            CreationPolicy::LocalUsers => self
                .config
                .local_hosts
                .iter()
                .any(|h| h == user.domain().as_str()),
            CreationPolicy::Admins => false,
        }
    }

    /// A stanza for a room that does not exist. `Ok(room)` when this stanza
    /// may create it (the caller then passes the same stanza to
    /// [`Room::handle`]); otherwise the error replies to send.
    pub fn on_missing_room(&self, stanza: &Element, _ctx: &Context) -> Result<Room, Vec<Element>> {
        let t = stanza_type(stanza);
        if t == "error" {
            return Err(Vec::new());
        }
        let to = stanza.attr("to").and_then(|t| Jid::new(t).ok());
        let Some(to) = to else {
            return Err(error_reply(stanza, &StanzaErr::jid_malformed(), None)
                .into_iter()
                .collect());
        };
        let room = to.to_bare();
        if stanza.name() != "presence" {
            return Err(error_reply(
                stanza,
                &StanzaErr::item_not_found().with_text("No such room"),
                None,
            )
            .into_iter()
            .collect());
        }
        if t != "available" {
            // unavailable, probes and subscriptions to a missing room
            return Err(Vec::new());
        }
        if to.resource().is_none() || room.node().is_none() {
            return Err(join_error(
                stanza,
                &StanzaErr::jid_malformed().with_text("A nickname is required"),
                &room,
            )
            .into_iter()
            .collect());
        }
        let sender = stanza.attr("from").and_then(|f| Jid::new(f).ok());
        let Some(sender) = sender.filter(|s| s.is_full()) else {
            return Err(Vec::new());
        };
        if !self.may_create(&sender.to_bare()) {
            return Err(join_error(
                stanza,
                &StanzaErr::forbidden().with_text("Room creation is restricted"),
                &room,
            )
            .into_iter()
            .collect());
        }
        Ok(Room::new(room, self.config.clone()))
    }
}

fn result(request: &Element, payload: Option<Element>) -> Element {
    let mut r = elem(
        "iq",
        NS_CLIENT,
        &[
            ("from", request.attr("to").unwrap_or("")),
            ("to", request.attr("from").unwrap_or("")),
            ("type", "result"),
        ],
    );
    if let Some(id) = request.attr("id") {
        set_attr(&mut r, "id", id);
    }
    if let Some(p) = payload {
        r.append_child(p);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_wire, ctx, from, service, JULIET};

    fn ask(query: &str, rooms: &[RoomListing]) -> Vec<Element> {
        Service::new(service()).handle_domain_stanza(
            from(
                JULIET,
                &format!("<iq xmlns='jabber:client' to='conference.localhost' id='s' type='get'>{query}</iq>"),
            ),
            rooms,
            &ctx(0),
        )
    }

    #[test]
    fn the_service_info_as_sent() {
        let out = ask(
            "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            &[],
        );
        assert_eq!(out.len(), 1);
        assert_wire(
            &out[0],
            concat!(
                "<iq xmlns='jabber:client' from='conference.localhost' to='juliet@localhost/garden' id='s' type='result'>",
                "<query xmlns='http://jabber.org/protocol/disco#info'>",
                "<identity category='conference' type='text' name='Chatrooms'/>",
                "<feature var='http://jabber.org/protocol/disco#info'/>",
                "<feature var='http://jabber.org/protocol/disco#items'/>",
                "<feature var='http://jabber.org/protocol/muc'/>",
                "<feature var='urn:xmpp:occupant-id:0'/>",
                "<feature var='http://jabber.org/protocol/muc#unique'/>",
                "</query></iq>"
            ),
        );
    }

    #[test]
    fn the_public_rooms_in_order_with_their_names() {
        let rooms = [
            RoomListing {
                jid: "zeta@conference.localhost".parse().unwrap(),
                name: None,
            },
            RoomListing {
                jid: "alpha@conference.localhost".parse().unwrap(),
                name: Some("Alpha & <Omega>".into()),
            },
        ];
        let out = ask(
            "<query xmlns='http://jabber.org/protocol/disco#items'/>",
            &rooms,
        );
        assert_wire(
            &out[0],
            concat!(
                "<iq xmlns='jabber:client' from='conference.localhost' to='juliet@localhost/garden' id='s' type='result'>",
                "<query xmlns='http://jabber.org/protocol/disco#items'>",
                "<item jid='alpha@conference.localhost' name='Alpha &amp; &lt;Omega&gt;'/>",
                "<item jid='zeta@conference.localhost'/>",
                "</query></iq>"
            ),
        );
        assert_wire(
            &ask("<query xmlns='http://jabber.org/protocol/disco#items'/>", &[])[0],
            "<iq xmlns='jabber:client' from='conference.localhost' to='juliet@localhost/garden' id='s' type='result'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
        );
        assert_wire(
            &ask("<query xmlns='http://jabber.org/protocol/disco#items' node='x'/>", &[])[0],
            "<iq xmlns='jabber:client' from='conference.localhost' to='juliet@localhost/garden' id='s' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
        );
    }
}
