//! Presence subscriptions (RFC 6121 section 3) as a pure state machine.
//!
//! [`transition`] takes the roster state of one contact and a subscription
//! stanza in one direction, and says what the server does about it: RFC
//! 6121 Appendix A, table A.2 for the stanzas a user sends and table A.3 for
//! those arriving for a user, plus pre-approval (section 3.4) and the
//! pending inbound request the server keeps (and presents again at each
//! login) until the user answers it. [`refusal`] holds the two decisions
//! taken before the roster is read. Nothing here does any I/O: the presence
//! module reads the roster item and the pending request, asks, and carries
//! the answer out.
//!
//! A contact without a roster item is [`State::NONE`] (with `pending_in`
//! as stored): every decision is the same as for an item in that state.
//! When such a transition has `changed` set, the item is created (with no
//! name and no groups); only outbound `subscribe` and `subscribed` do that.

use conclave_store::Subscription;

/// Which way a subscription stanza goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the user to a contact (Appendix A.2).
    Outbound,
    /// Sent by a contact, arriving for the user (Appendix A.3).
    Inbound,
}

/// The four subscription stanzas (presence types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl Kind {
    /// The kind of a presence `type`, `None` when it is not a subscription stanza.
    pub fn from_type(t: &str) -> Option<Kind> {
        match t {
            "subscribe" => Some(Kind::Subscribe),
            "subscribed" => Some(Kind::Subscribed),
            "unsubscribe" => Some(Kind::Unsubscribe),
            "unsubscribed" => Some(Kind::Unsubscribed),
            _ => None,
        }
    }

    /// The presence `type` of this kind.
    pub fn as_type(self) -> &'static str {
        match self {
            Kind::Subscribe => "subscribe",
            Kind::Subscribed => "subscribed",
            Kind::Unsubscribe => "unsubscribe",
            Kind::Unsubscribed => "unsubscribed",
        }
    }
}

/// The user's side of the relationship with one contact: the roster
/// item's subscription and flags, and whether a request from the contact
/// is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub subscription: Subscription,
    /// "Pending Out": the user asked for the contact's presence
    /// (`ask='subscribe'` on the item).
    pub ask: bool,
    /// The user pre-approved a request from the contact (section 3.4).
    pub approved: bool,
    /// "Pending In": a request from the contact is stored, unanswered.
    pub pending_in: bool,
}

impl State {
    /// Subscription `none`, no flags, no pending request: also the state of
    /// a contact without a roster item.
    pub const NONE: State = State {
        subscription: Subscription::None,
        ask: false,
        approved: false,
        pending_in: false,
    };
}

/// Presence of the user's resources that goes to the contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceAction {
    /// The current presence of each available resource.
    Current,
    /// An unavailable presence from each available resource.
    Unavailable,
}

/// What becomes of the stored request from the contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Left as it is (there may be none).
    Keep,
    /// This `subscribe` is stored, replacing any earlier one.
    Store,
    /// Removed (there may be none).
    Remove,
}

/// What the server does with one subscription stanza.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state afterwards (`pending_in` follows `request`).
    pub next: State,
    /// The roster item changed (or is created): save it and push it to the
    /// user's interested resources.
    pub changed: bool,
    /// The stored request from the contact.
    pub request: Request,
    /// The stanza goes on: outbound, routed to the contact (with bare JIDs
    /// both ways); inbound, to the user's available resources.
    pub deliver: bool,
    /// An answer of this kind from the user's bare JID to the contact,
    /// given by the server on the user's behalf (inbound only).
    pub reply: Option<Kind>,
    /// Presence of the user's available resources to the contact, after
    /// the stanza (outbound) or the reply (inbound).
    pub send_presence: Option<PresenceAction>,
    /// Unavailable presence from the user's bare JID to the contact,
    /// acknowledging a request that waits for the user (inbound only,
    /// before anything else, as Prosody does).
    pub acknowledge: bool,
}

impl Transition {
    /// Nothing happens: the stanza is dropped.
    fn none(state: State) -> Transition {
        Transition {
            next: state,
            changed: false,
            request: Request::Keep,
            deliver: false,
            reply: None,
            send_presence: None,
            acknowledge: false,
        }
    }
}

/// The contact receives the user's presence (`from` or `both`).
fn has_from(s: Subscription) -> bool {
    matches!(s, Subscription::From | Subscription::Both)
}

/// The user receives the contact's presence (`to` or `both`).
fn has_to(s: Subscription) -> bool {
    matches!(s, Subscription::To | Subscription::Both)
}

/// What the server does with a subscription stanza of `kind` going `dir`,
/// when the user's state for that contact is `state`.
pub fn transition(dir: Direction, kind: Kind, state: State) -> Transition {
    use Subscription::{Both, From, To};
    let s = state.subscription;
    let mut t = Transition::none(state);
    match (dir, kind) {
        // A.2.1: the request always goes out; it is noted unless the user
        // already receives the contact's presence or already asked.
        (Direction::Outbound, Kind::Subscribe) => {
            if !has_to(s) && !state.ask {
                t.next.ask = true;
                t.changed = true;
            }
            t.deliver = true;
        }
        // A.2.2: approving a pending request, or a pre-approval when none
        // is pending; nothing goes out when the contact is already subscribed.
        (Direction::Outbound, Kind::Subscribed) => {
            if has_from(s) {
                t.request = Request::Remove;
            } else if state.pending_in {
                t.next.subscription = if s == To { Both } else { From };
                t.next.approved = false;
                t.changed = true;
                t.request = Request::Remove;
                t.deliver = true;
                t.send_presence = Some(PresenceAction::Current);
            } else if !state.approved {
                t.next.approved = true;
                t.changed = true;
            }
        }
        // A.2.3: cancelling the user's subscription or pending request.
        (Direction::Outbound, Kind::Unsubscribe) => {
            if has_to(s) || state.ask {
                t.next.subscription = if has_from(s) {
                    From
                } else {
                    Subscription::None
                };
                t.next.ask = false;
                t.changed = true;
                t.deliver = true;
            }
        }
        // A.2.4: cancelling the contact's subscription, refusing its
        // request, or withdrawing a pre-approval. The pending request goes
        // in every case; the stanza goes out when there was something to
        // cancel or refuse.
        (Direction::Outbound, Kind::Unsubscribed) => {
            t.request = Request::Remove;
            if has_from(s) {
                t.next.subscription = if has_to(s) { To } else { Subscription::None };
                t.next.approved = false;
                t.changed = true;
                t.deliver = true;
                t.send_presence = Some(PresenceAction::Unavailable);
            } else {
                if state.approved {
                    t.next.approved = false;
                    t.changed = true;
                }
                t.deliver = state.pending_in;
            }
        }
        // A.3.1: answered on the user's behalf when the contact is already
        // subscribed or pre-approved; otherwise stored and shown to the user.
        (Direction::Inbound, Kind::Subscribe) => {
            if has_from(s) {
                t.reply = Some(Kind::Subscribed);
                t.send_presence = Some(PresenceAction::Current);
            } else if state.approved {
                t.next.subscription = if s == To { Both } else { From };
                t.next.approved = false;
                t.changed = true;
                t.reply = Some(Kind::Subscribed);
                t.send_presence = Some(PresenceAction::Current);
            } else {
                // A request already waiting is neither stored nor shown
                // again; each one is acknowledged.
                t.acknowledge = true;
                if !state.pending_in {
                    t.request = Request::Store;
                    t.deliver = true;
                }
            }
        }
        // A.3.2: only an approval the user asked for counts.
        (Direction::Inbound, Kind::Subscribed) => {
            if state.ask && !has_to(s) {
                t.next.subscription = if s == From { Both } else { To };
                t.next.ask = false;
                t.changed = true;
                t.deliver = true;
            }
        }
        // A.3.3: the contact cancels its subscription, or withdraws its
        // pending request (the user is told of either).
        (Direction::Inbound, Kind::Unsubscribe) => {
            t.request = Request::Remove;
            if has_from(s) {
                t.next.subscription = if s == Both { To } else { Subscription::None };
                t.changed = true;
                t.deliver = true;
                t.send_presence = Some(PresenceAction::Unavailable);
            } else {
                t.deliver = state.pending_in;
            }
        }
        // A.3.4: the contact cancels the user's subscription or refuses
        // the user's request.
        (Direction::Inbound, Kind::Unsubscribed) => {
            if has_to(s) || state.ask {
                t.next.subscription = if has_from(s) {
                    From
                } else {
                    Subscription::None
                };
                t.next.ask = false;
                t.changed = true;
                t.deliver = true;
            }
        }
    }
    t.next.pending_in = match t.request {
        Request::Keep => state.pending_in,
        Request::Store => true,
        Request::Remove => false,
    };
    t
}

/// A subscription stanza refused before any roster is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Outbound to the user's own bare JID: bounced with `bad-request`.
    Bounce,
    /// Inbound for an account that does not exist: this answer (from the
    /// account's bare JID) goes back to the sender.
    Answer(Kind),
    /// Inbound for an account that does not exist: dropped.
    Drop,
}

/// The refusals that come before [`transition`]: an outbound stanza to
/// oneself (`to_self`), an inbound one for an account that does not exist
/// (`!account_exists`). `None` when the stanza goes on to [`transition`].
pub fn refusal(dir: Direction, kind: Kind, to_self: bool, account_exists: bool) -> Option<Refusal> {
    match dir {
        Direction::Outbound if to_self => Some(Refusal::Bounce),
        Direction::Inbound if !account_exists => Some(match kind {
            Kind::Subscribe => Refusal::Answer(Kind::Unsubscribed),
            _ => Refusal::Drop,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::{Inbound, Outbound};
    use super::Kind::{Subscribe, Subscribed, Unsubscribe, Unsubscribed};
    use super::PresenceAction::{Current, Unavailable};
    use super::Request::{Remove, Store};
    use super::*;

    const fn st(subscription: Subscription, ask: bool, pending_in: bool) -> State {
        State {
            subscription,
            ask,
            approved: false,
            pending_in,
        }
    }

    const fn approved(s: State) -> State {
        State {
            approved: true,
            ..s
        }
    }

    // The states of RFC 6121 Appendix A.1.
    const NONE: State = State::NONE;
    const NONE_PENDING_OUT: State = st(Subscription::None, true, false);
    const NONE_PENDING_IN: State = st(Subscription::None, false, true);
    const NONE_PENDING_OUT_IN: State = st(Subscription::None, true, true);
    const TO: State = st(Subscription::To, false, false);
    const TO_PENDING_IN: State = st(Subscription::To, false, true);
    const FROM: State = st(Subscription::From, false, false);
    const FROM_PENDING_OUT: State = st(Subscription::From, true, false);
    const BOTH: State = st(Subscription::Both, false, false);

    /// One row: `dir kind, before => after` and the fields of the
    /// transition that are not "nothing happens".
    macro_rules! row {
        ($name:ident: $dir:ident $kind:ident, $before:expr => $after:expr $(, $field:ident: $value:expr)* $(,)?) => {
            #[test]
            fn $name() {
                let expected = Transition {
                    $($field: $value,)*
                    ..Transition::none($after)
                };
                assert_eq!(transition($dir, $kind, $before), expected);
            }
        };
    }

    // A.2.1 outbound subscribe.
    row!(outbound_subscribe_none: Outbound Subscribe, NONE => NONE_PENDING_OUT, changed: true, deliver: true);
    row!(outbound_subscribe_none_pending_out: Outbound Subscribe, NONE_PENDING_OUT => NONE_PENDING_OUT, deliver: true);
    row!(outbound_subscribe_none_pending_in: Outbound Subscribe, NONE_PENDING_IN => NONE_PENDING_OUT_IN, changed: true, deliver: true);
    row!(outbound_subscribe_none_pending_out_in: Outbound Subscribe, NONE_PENDING_OUT_IN => NONE_PENDING_OUT_IN, deliver: true);
    row!(outbound_subscribe_to: Outbound Subscribe, TO => TO, deliver: true);
    row!(outbound_subscribe_to_pending_in: Outbound Subscribe, TO_PENDING_IN => TO_PENDING_IN, deliver: true);
    row!(outbound_subscribe_from: Outbound Subscribe, FROM => FROM_PENDING_OUT, changed: true, deliver: true);
    row!(outbound_subscribe_from_pending_out: Outbound Subscribe, FROM_PENDING_OUT => FROM_PENDING_OUT, deliver: true);
    row!(outbound_subscribe_both: Outbound Subscribe, BOTH => BOTH, deliver: true);

    // A.2.2 outbound subscribed. Where the table has no state change and
    // no request is pending, the answer is kept as a pre-approval (3.4).
    row!(outbound_subscribed_none: Outbound Subscribed, NONE => approved(NONE), changed: true);
    row!(outbound_subscribed_none_pending_out: Outbound Subscribed, NONE_PENDING_OUT => approved(NONE_PENDING_OUT), changed: true);
    row!(outbound_subscribed_none_pending_in: Outbound Subscribed, NONE_PENDING_IN => FROM, changed: true, request: Remove, deliver: true, send_presence: Some(Current));
    row!(outbound_subscribed_none_pending_out_in: Outbound Subscribed, NONE_PENDING_OUT_IN => FROM_PENDING_OUT, changed: true, request: Remove, deliver: true, send_presence: Some(Current));
    row!(outbound_subscribed_to: Outbound Subscribed, TO => approved(TO), changed: true);
    row!(outbound_subscribed_to_pending_in: Outbound Subscribed, TO_PENDING_IN => BOTH, changed: true, request: Remove, deliver: true, send_presence: Some(Current));
    row!(outbound_subscribed_from: Outbound Subscribed, FROM => FROM, request: Remove);
    row!(outbound_subscribed_from_pending_out: Outbound Subscribed, FROM_PENDING_OUT => FROM_PENDING_OUT, request: Remove);
    row!(outbound_subscribed_both: Outbound Subscribed, BOTH => BOTH, request: Remove);

    // A.2.3 outbound unsubscribe.
    row!(outbound_unsubscribe_none: Outbound Unsubscribe, NONE => NONE);
    row!(outbound_unsubscribe_none_pending_out: Outbound Unsubscribe, NONE_PENDING_OUT => NONE, changed: true, deliver: true);
    row!(outbound_unsubscribe_none_pending_in: Outbound Unsubscribe, NONE_PENDING_IN => NONE_PENDING_IN);
    row!(outbound_unsubscribe_none_pending_out_in: Outbound Unsubscribe, NONE_PENDING_OUT_IN => NONE_PENDING_IN, changed: true, deliver: true);
    row!(outbound_unsubscribe_to: Outbound Unsubscribe, TO => NONE, changed: true, deliver: true);
    row!(outbound_unsubscribe_to_pending_in: Outbound Unsubscribe, TO_PENDING_IN => NONE_PENDING_IN, changed: true, deliver: true);
    row!(outbound_unsubscribe_from: Outbound Unsubscribe, FROM => FROM);
    row!(outbound_unsubscribe_from_pending_out: Outbound Unsubscribe, FROM_PENDING_OUT => FROM, changed: true, deliver: true);
    row!(outbound_unsubscribe_both: Outbound Unsubscribe, BOTH => FROM, changed: true, deliver: true);

    // A.2.4 outbound unsubscribed. The stored request is removed in every
    // row; refusing it changes no roster item.
    row!(outbound_unsubscribed_none: Outbound Unsubscribed, NONE => NONE, request: Remove);
    row!(outbound_unsubscribed_none_pending_out: Outbound Unsubscribed, NONE_PENDING_OUT => NONE_PENDING_OUT, request: Remove);
    row!(outbound_unsubscribed_none_pending_in: Outbound Unsubscribed, NONE_PENDING_IN => NONE, request: Remove, deliver: true);
    row!(outbound_unsubscribed_none_pending_out_in: Outbound Unsubscribed, NONE_PENDING_OUT_IN => NONE_PENDING_OUT, request: Remove, deliver: true);
    row!(outbound_unsubscribed_to: Outbound Unsubscribed, TO => TO, request: Remove);
    row!(outbound_unsubscribed_to_pending_in: Outbound Unsubscribed, TO_PENDING_IN => TO, request: Remove, deliver: true);
    row!(outbound_unsubscribed_from: Outbound Unsubscribed, FROM => NONE, changed: true, request: Remove, deliver: true, send_presence: Some(Unavailable));
    row!(outbound_unsubscribed_from_pending_out: Outbound Unsubscribed, FROM_PENDING_OUT => NONE_PENDING_OUT, changed: true, request: Remove, deliver: true, send_presence: Some(Unavailable));
    row!(outbound_unsubscribed_both: Outbound Unsubscribed, BOTH => TO, changed: true, request: Remove, deliver: true, send_presence: Some(Unavailable));

    // A.3.1 inbound subscribe. Each request that waits for the user is
    // acknowledged; one already pending is kept as it was and not shown
    // again. A contact already subscribed gets the answer and the user's
    // current presence (as Prosody does).
    row!(inbound_subscribe_none: Inbound Subscribe, NONE => NONE_PENDING_IN, request: Store, deliver: true, acknowledge: true);
    row!(inbound_subscribe_none_pending_out: Inbound Subscribe, NONE_PENDING_OUT => NONE_PENDING_OUT_IN, request: Store, deliver: true, acknowledge: true);
    row!(inbound_subscribe_none_pending_in: Inbound Subscribe, NONE_PENDING_IN => NONE_PENDING_IN, acknowledge: true);
    row!(inbound_subscribe_none_pending_out_in: Inbound Subscribe, NONE_PENDING_OUT_IN => NONE_PENDING_OUT_IN, acknowledge: true);
    row!(inbound_subscribe_to: Inbound Subscribe, TO => TO_PENDING_IN, request: Store, deliver: true, acknowledge: true);
    row!(inbound_subscribe_to_pending_in: Inbound Subscribe, TO_PENDING_IN => TO_PENDING_IN, acknowledge: true);
    row!(inbound_subscribe_from: Inbound Subscribe, FROM => FROM, reply: Some(Subscribed), send_presence: Some(Current));
    row!(inbound_subscribe_from_pending_out: Inbound Subscribe, FROM_PENDING_OUT => FROM_PENDING_OUT, reply: Some(Subscribed), send_presence: Some(Current));
    row!(inbound_subscribe_both: Inbound Subscribe, BOTH => BOTH, reply: Some(Subscribed), send_presence: Some(Current));

    // A.3.2 inbound subscribed.
    row!(inbound_subscribed_none: Inbound Subscribed, NONE => NONE);
    row!(inbound_subscribed_none_pending_out: Inbound Subscribed, NONE_PENDING_OUT => TO, changed: true, deliver: true);
    row!(inbound_subscribed_none_pending_in: Inbound Subscribed, NONE_PENDING_IN => NONE_PENDING_IN);
    row!(inbound_subscribed_none_pending_out_in: Inbound Subscribed, NONE_PENDING_OUT_IN => TO_PENDING_IN, changed: true, deliver: true);
    row!(inbound_subscribed_to: Inbound Subscribed, TO => TO);
    row!(inbound_subscribed_to_pending_in: Inbound Subscribed, TO_PENDING_IN => TO_PENDING_IN);
    row!(inbound_subscribed_from: Inbound Subscribed, FROM => FROM);
    row!(inbound_subscribed_from_pending_out: Inbound Subscribed, FROM_PENDING_OUT => BOTH, changed: true, deliver: true);
    row!(inbound_subscribed_both: Inbound Subscribed, BOTH => BOTH);

    // A.3.3 inbound unsubscribe. The stored request is removed in every row.
    row!(inbound_unsubscribe_none: Inbound Unsubscribe, NONE => NONE, request: Remove);
    row!(inbound_unsubscribe_none_pending_out: Inbound Unsubscribe, NONE_PENDING_OUT => NONE_PENDING_OUT, request: Remove);
    row!(inbound_unsubscribe_none_pending_in: Inbound Unsubscribe, NONE_PENDING_IN => NONE, request: Remove, deliver: true);
    row!(inbound_unsubscribe_none_pending_out_in: Inbound Unsubscribe, NONE_PENDING_OUT_IN => NONE_PENDING_OUT, request: Remove, deliver: true);
    row!(inbound_unsubscribe_to: Inbound Unsubscribe, TO => TO, request: Remove);
    row!(inbound_unsubscribe_to_pending_in: Inbound Unsubscribe, TO_PENDING_IN => TO, request: Remove, deliver: true);
    row!(inbound_unsubscribe_from: Inbound Unsubscribe, FROM => NONE, changed: true, request: Remove, deliver: true, send_presence: Some(Unavailable));
    row!(inbound_unsubscribe_from_pending_out: Inbound Unsubscribe, FROM_PENDING_OUT => NONE_PENDING_OUT, changed: true, request: Remove, deliver: true, send_presence: Some(Unavailable));
    row!(inbound_unsubscribe_both: Inbound Unsubscribe, BOTH => TO, changed: true, request: Remove, deliver: true, send_presence: Some(Unavailable));

    // A.3.4 inbound unsubscribed.
    row!(inbound_unsubscribed_none: Inbound Unsubscribed, NONE => NONE);
    row!(inbound_unsubscribed_none_pending_out: Inbound Unsubscribed, NONE_PENDING_OUT => NONE, changed: true, deliver: true);
    row!(inbound_unsubscribed_none_pending_in: Inbound Unsubscribed, NONE_PENDING_IN => NONE_PENDING_IN);
    row!(inbound_unsubscribed_none_pending_out_in: Inbound Unsubscribed, NONE_PENDING_OUT_IN => NONE_PENDING_IN, changed: true, deliver: true);
    row!(inbound_unsubscribed_to: Inbound Unsubscribed, TO => NONE, changed: true, deliver: true);
    row!(inbound_unsubscribed_to_pending_in: Inbound Unsubscribed, TO_PENDING_IN => NONE_PENDING_IN, changed: true, deliver: true);
    row!(inbound_unsubscribed_from: Inbound Unsubscribed, FROM => FROM);
    row!(inbound_unsubscribed_from_pending_out: Inbound Unsubscribed, FROM_PENDING_OUT => FROM, changed: true, deliver: true);
    row!(inbound_unsubscribed_both: Inbound Unsubscribed, BOTH => FROM, changed: true, deliver: true);

    // Pre-approval (section 3.4).
    row!(outbound_subscribed_already_approved: Outbound Subscribed, approved(NONE) => approved(NONE));
    row!(outbound_subscribed_none_pending_in_approved: Outbound Subscribed, approved(NONE_PENDING_IN) => FROM, changed: true, request: Remove, deliver: true, send_presence: Some(Current));
    row!(outbound_unsubscribed_approved_withdraws_the_approval: Outbound Unsubscribed, approved(NONE) => NONE, changed: true, request: Remove);
    row!(outbound_unsubscribed_approved_to: Outbound Unsubscribed, approved(TO) => TO, changed: true, request: Remove);
    row!(outbound_unsubscribed_approved_none_pending_in: Outbound Unsubscribed, approved(NONE_PENDING_IN) => NONE, changed: true, request: Remove, deliver: true);
    row!(inbound_subscribe_approved_none: Inbound Subscribe, approved(NONE) => FROM, changed: true, reply: Some(Subscribed), send_presence: Some(Current));
    row!(inbound_subscribe_approved_none_pending_out: Inbound Subscribe, approved(NONE_PENDING_OUT) => FROM_PENDING_OUT, changed: true, reply: Some(Subscribed), send_presence: Some(Current));
    row!(inbound_subscribe_approved_to: Inbound Subscribe, approved(TO) => BOTH, changed: true, reply: Some(Subscribed), send_presence: Some(Current));
    row!(inbound_subscribe_approved_both: Inbound Subscribe, approved(BOTH) => approved(BOTH), reply: Some(Subscribed), send_presence: Some(Current));

    /// The part of a state kept in the roster item.
    fn item(s: State) -> (Subscription, bool, bool) {
        (s.subscription, s.ask, s.approved)
    }

    const KINDS: [Kind; 4] = [Subscribe, Subscribed, Unsubscribe, Unsubscribed];

    /// Every combination of subscription and flags, reachable or not.
    fn every_state() -> Vec<State> {
        let mut out = Vec::new();
        for subscription in [
            Subscription::None,
            Subscription::To,
            Subscription::From,
            Subscription::Both,
        ] {
            for bits in 0..8u8 {
                out.push(State {
                    subscription,
                    ask: bits & 1 != 0,
                    approved: bits & 2 != 0,
                    pending_in: bits & 4 != 0,
                });
            }
        }
        out
    }

    #[test]
    fn changed_exactly_when_the_roster_item_differs() {
        for state in every_state() {
            for dir in [Outbound, Inbound] {
                for kind in KINDS {
                    let t = transition(dir, kind, state);
                    assert_eq!(
                        t.changed,
                        item(t.next) != item(state),
                        "{dir:?} {kind:?} from {state:?}: {t:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn pending_in_follows_the_request_decision() {
        for state in every_state() {
            for dir in [Outbound, Inbound] {
                for kind in KINDS {
                    let t = transition(dir, kind, state);
                    let expected = match t.request {
                        Request::Keep => state.pending_in,
                        Request::Store => true,
                        Request::Remove => false,
                    };
                    assert_eq!(t.next.pending_in, expected, "{dir:?} {kind:?} {state:?}");
                    // Only an inbound subscribe stores a request, when
                    // none is pending.
                    assert_eq!(
                        t.request == Store,
                        dir == Inbound
                            && kind == Subscribe
                            && !has_from(state.subscription)
                            && !state.approved
                            && !state.pending_in,
                        "{dir:?} {kind:?} {state:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn replies_are_inbound_only_and_presence_follows_a_stanza() {
        for state in every_state() {
            for dir in [Outbound, Inbound] {
                for kind in KINDS {
                    let t = transition(dir, kind, state);
                    if dir == Outbound {
                        assert_eq!(t.reply, None, "{kind:?} {state:?}");
                    }
                    if t.send_presence.is_some() {
                        assert!(t.deliver || t.reply.is_some(), "{dir:?} {kind:?} {state:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn only_outbound_subscribe_and_subscribed_create_a_missing_item() {
        for pending_in in [false, true] {
            let missing = State {
                pending_in,
                ..State::NONE
            };
            for dir in [Outbound, Inbound] {
                for kind in KINDS {
                    let t = transition(dir, kind, missing);
                    assert_eq!(
                        t.changed,
                        dir == Outbound && matches!(kind, Subscribe | Subscribed),
                        "{dir:?} {kind:?} pending_in={pending_in}"
                    );
                }
            }
        }
    }

    #[test]
    fn refusals_before_the_roster() {
        for kind in KINDS {
            assert_eq!(refusal(Outbound, kind, true, true), Some(Refusal::Bounce));
            assert_eq!(refusal(Outbound, kind, false, true), None);
            assert_eq!(refusal(Inbound, kind, false, true), None);
        }
        assert_eq!(
            refusal(Inbound, Subscribe, false, false),
            Some(Refusal::Answer(Unsubscribed))
        );
        for kind in [Subscribed, Unsubscribe, Unsubscribed] {
            assert_eq!(refusal(Inbound, kind, false, false), Some(Refusal::Drop));
        }
    }

    #[test]
    fn kinds_and_presence_types() {
        for kind in KINDS {
            assert_eq!(Kind::from_type(kind.as_type()), Some(kind));
        }
        for other in ["", "unavailable", "probe", "error", "Subscribe"] {
            assert_eq!(Kind::from_type(other), None);
        }
    }
}
