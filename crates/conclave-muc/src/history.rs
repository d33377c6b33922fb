//! Room history: the last groupchat messages, replayed to a joining
//! occupant as the join's `<history/>` asks (maxstanzas, maxchars,
//! seconds, since), each with a delay stamp.

use chrono::{DateTime, Utc};
use jid::FullJid;
use minidom::Element;

use crate::room::Room;
use crate::xml::{elem, set_attr, NS_DELAY, NS_MUC};
use crate::{Context, Effect};

#[derive(Clone, Debug)]
pub(crate) struct HistoryEntry {
    /// The message as broadcast (from `room/nick`), without `to`.
    pub stanza: Element,
    pub at: DateTime<Utc>,
    /// Length of the serialised stanza, for `maxchars`.
    pub chars: usize,
    /// Its size in bytes, for the service's bound on history bytes.
    pub bytes: usize,
}

/// What a joining client asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HistoryRequest {
    pub maxstanzas: Option<usize>,
    pub maxchars: Option<usize>,
    pub seconds: Option<i64>,
    pub since: Option<DateTime<Utc>>,
}

impl HistoryRequest {
    /// Reads `<history/>`; unparsable limits are ignored, huge ones are
    /// capped later by what the room holds. Read by hand: xmpp-parsers'
    /// `History` refuses the whole element for one bad limit.
    pub(crate) fn parse(muc_x: Option<&Element>) -> HistoryRequest {
        let Some(h) = muc_x.and_then(|x| x.get_child("history", NS_MUC)) else {
            return HistoryRequest::default();
        };
        HistoryRequest {
            maxstanzas: h.attr("maxstanzas").and_then(|v| v.trim().parse().ok()),
            maxchars: h.attr("maxchars").and_then(|v| v.trim().parse().ok()),
            seconds: h.attr("seconds").and_then(|v| v.trim().parse().ok()),
            since: h
                .attr("since")
                .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
                .map(|d| d.with_timezone(&Utc)),
        }
    }
}

impl Room {
    /// Records a broadcast groupchat message.
    pub(crate) fn add_history(&mut self, msg: &Element, now: DateTime<Utc>) {
        let limit = self.config.history_length.min(self.service.max_history);
        if limit == 0 {
            self.history.clear();
            return;
        }
        let serialised = String::from(msg);
        self.history.push_back(HistoryEntry {
            stanza: msg.clone(),
            at: now,
            chars: serialised.chars().count(),
            bytes: serialised.len(),
        });
        let mut bytes: usize = self.history.iter().map(|e| e.bytes).sum();
        while self.history.len() > limit || bytes > self.service.max_history_bytes {
            match self.history.pop_front() {
                Some(old) => bytes -= old.bytes,
                None => break,
            }
        }
    }

    /// The entries to replay for a request, oldest first.
    pub(crate) fn select_history(
        &self,
        req: &HistoryRequest,
        now: DateTime<Utc>,
    ) -> Vec<&HistoryEntry> {
        let maxstanzas = req
            .maxstanzas
            .unwrap_or(self.config.default_history_messages);
        let mut picked: Vec<&HistoryEntry> = Vec::new();
        let mut chars: usize = 0;
        for e in self.history.iter().rev() {
            if picked.len() >= maxstanzas {
                break;
            }
            if let Some(secs) = req.seconds {
                if (now - e.at).num_seconds() > secs {
                    break;
                }
            }
            if let Some(since) = req.since {
                if e.at <= since {
                    break;
                }
            }
            if let Some(max) = req.maxchars {
                chars = chars.saturating_add(e.chars);
                if chars > max {
                    break;
                }
            }
            picked.push(e);
        }
        picked.reverse();
        picked
    }

    pub(crate) fn send_history(
        &self,
        to: &FullJid,
        muc_x: Option<&Element>,
        ctx: &Context,
        out: &mut Vec<Effect>,
    ) {
        let req = HistoryRequest::parse(muc_x);
        let room = self.room_str();
        for e in self.select_history(&req, ctx.now) {
            let mut m = e.stanza.clone();
            set_attr(&mut m, "to", to.to_string());
            // Built by hand: xmpp-parsers' `Delay` writes its stamp as
            // `+00:00` with fractions of a second, the room as `Z` without.
            let stamp = e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            m.append_child(elem(
                "delay",
                NS_DELAY,
                &[("from", &room), ("stamp", &stamp)],
            ));
            out.push(Effect::Send(m));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_wire, ctx, from, open_room, stanzas, JULIET, ROMEO};

    #[test]
    fn history_is_bounded_in_bytes() {
        let mut room = open_room();
        let mut service = (*room.service).clone();
        service.max_history_bytes = 4096;
        room.service = std::sync::Arc::new(service);
        let say = |room: &mut crate::room::Room, body: &str| {
            room.handle(
                from(
                    ROMEO,
                    &format!("<message xmlns='jabber:client' to='room@conference.localhost' type='groupchat'><body>{body}</body></message>"),
                ),
                &ctx(1),
            );
        };
        for i in 0..10 {
            say(&mut room, &format!("{i}{}", "x".repeat(1000)));
        }
        let total: usize = room.history.iter().map(|e| e.bytes).sum();
        assert!(total <= 4096, "{total} bytes kept");
        assert!(room.history.len() >= 3, "the newest messages stay");
        let newest = room
            .history
            .back()
            .unwrap()
            .stanza
            .get_child("body", "jabber:client")
            .unwrap()
            .text();
        assert!(newest.starts_with('9'));
        // A message larger than the whole bound is not kept at all.
        say(&mut room, &"y".repeat(5000));
        assert!(room.history.iter().all(|e| e.bytes <= 4096));
        assert!(room.history.iter().map(|e| e.bytes).sum::<usize>() <= 4096);
    }

    #[test]
    fn history_is_replayed_with_a_delay_stamp_from_the_room() {
        let mut room = open_room();
        room.handle(
            from(
                ROMEO,
                "<message xmlns='jabber:client' to='room@conference.localhost' type='groupchat' id='m1'><body>hi</body></message>",
            ),
            &crate::Context {
                now: ctx(0).now + chrono::Duration::milliseconds(1500),
            },
        );
        let out = stanzas(room.handle(
            from(
                JULIET,
                "<presence xmlns='jabber:client' to='room@conference.localhost/Juliet'/>",
            ),
            &ctx(60),
        ));
        let replayed: Vec<_> = out.iter().filter(|s| s.name() == "message").collect();
        assert_eq!(replayed.len(), 2, "the message, then the subject");
        let id = crate::occupant_id::occupant_id(
            "salt",
            &"room@conference.localhost".parse().unwrap(),
            &"romeo@localhost".parse().unwrap(),
        );
        assert_wire(
            replayed[0],
            &format!("<message xmlns='jabber:client' to='juliet@localhost/garden' from='room@conference.localhost/Romeo' type='groupchat' id='m1'><body>hi</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='{id}'/><delay xmlns='urn:xmpp:delay' from='room@conference.localhost' stamp='2023-11-14T22:13:21Z'/></message>"),
        );
    }
}
