//! Glue between the router and the group-chat state machine
//! (`conclave-muc`): each room runs in its own task that owns its `Room`
//! and a bounded queue; stanzas to the service domain go to `Service`;
//! effects are carried out in order, once what they change in the room's
//! saved state is stored (see [`room_task`]). Saved rooms are restored at
//! start; at shutdown every room tells its occupants (status 332) before
//! its task ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use conclave_muc::{Context, Effect, Room, RoomListing, Service, ServiceConfig};
use conclave_store::{Store, StoreError};
use jid::{BareJid, Jid};
use minidom::Element;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::router::{Component, Outlet};
use crate::xml::{error_reply, nc, CLIENT};

fn bounce(stanza: &Element, cond: Cond, text: Option<&str>) -> Vec<Element> {
    error_reply(stanza, cond, text).into_iter().collect()
}

struct RoomHandle {
    tx: mpsc::Sender<Element>,
    listing: Arc<Mutex<Option<RoomListing>>>,
    task: JoinHandle<()>,
}

/// How long [`MucService::shutdown`] waits for the rooms to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The group-chat service of one domain. Cloning shares it: room tasks
/// hold a clone, to forget their room or hand it stanzas again.
#[derive(Clone)]
pub struct MucService {
    inner: Arc<Inner>,
}

struct Inner {
    service: Service,
    rooms: Mutex<HashMap<BareJid, RoomHandle>>,
    store: Arc<dyn Store>,
    queue: usize,
    outlet: OnceLock<Weak<dyn Outlet>>,
    /// Set by [`MucService::shutdown`]: no room starts any more.
    stopping: AtomicBool,
}

fn ctx() -> Context {
    Context { now: Utc::now() }
}

impl MucService {
    pub fn new(config: ServiceConfig, store: Arc<dyn Store>, queue: usize) -> MucService {
        MucService {
            inner: Arc::new(Inner {
                service: Service::new(Arc::new(config)),
                rooms: Mutex::new(HashMap::new()),
                store,
                queue,
                outlet: OnceLock::new(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<BareJid, RoomHandle>> {
        self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connects the service to the outlet its rooms send through, and
    /// restores the saved rooms. Returns how many.
    async fn restore(&self, outlet: Weak<dyn Outlet>) -> anyhow::Result<usize> {
        if self.inner.outlet.set(outlet).is_err() {
            anyhow::bail!("the group-chat service was started twice");
        }
        let saved = self
            .inner
            .store
            .room_list(&self.inner.service.config().domain)
            .await
            .map_err(|e| anyhow::anyhow!("cannot list saved rooms: {e}"))?;
        let mut restored = 0;
        for (jid, state) in saved {
            let Ok(bare) = BareJid::new(&jid) else {
                tracing::warn!("skipping saved room with invalid JID {jid:?}");
                continue;
            };
            match Room::restore(bare.clone(), &state, self.inner.service.config().clone()) {
                Ok(room) => {
                    self.spawn_room(room, Some(state), None);
                    restored += 1;
                }
                Err(e) => tracing::warn!("skipping saved room {jid}: {e}"),
            }
        }
        Ok(restored)
    }

    /// Stops every room task without waiting (their queues close; each
    /// tells its remaining occupants about the shutdown, status 332).
    pub fn stop(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.rooms().clear();
    }

    /// Shuts the service down: refuses new stanzas, closes every room's
    /// queue, and waits (up to a few seconds) until each room has handled
    /// what was queued and sent its occupants their status 332 presences.
    /// Call it before the sessions are closed, so that they get them.
    pub async fn shutdown_rooms(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let handles: Vec<RoomHandle> = self.rooms().drain().map(|(_, h)| h).collect();
        let tasks: Vec<JoinHandle<()>> = handles
            .into_iter()
            .map(|h| {
                drop(h.tx);
                h.task
            })
            .collect();
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("some group-chat rooms did not stop in time");
        }
    }

    /// Number of rooms with a running task.
    pub fn room_count(&self) -> usize {
        self.rooms().len()
    }

    fn listings(&self) -> Vec<RoomListing> {
        self.rooms()
            .values()
            .filter_map(|h| h.listing.lock().ok().and_then(|l| l.clone()))
            .collect()
    }

    /// Starts the task of `room`, whose saved state is `saved` (`None`
    /// for a room never saved), with `first` in its queue.
    fn spawn_room(&self, room: Room, saved: Option<String>, first: Option<Element>) {
        let Some(outlet) = self.inner.outlet.get().cloned() else {
            return;
        };
        let (tx, rx) = mpsc::channel(self.inner.queue);
        let listing = Arc::new(Mutex::new(room.listing()));
        if let Some(first) = first {
            // The queue is new and empty: this cannot fail.
            let _ = tx.try_send(first);
        }
        let jid = room.jid().clone();
        let task = tokio::spawn(room_task(
            room,
            saved,
            rx,
            outlet,
            listing.clone(),
            self.clone(),
        ));
        self.rooms().insert(jid, RoomHandle { tx, listing, task });
    }

    /// Routes a stanza addressed to the service domain or one of its rooms.
    /// Returns stanzas to route (replies and errors).
    pub fn dispatch(&self, stanza: Element, to: &Jid) -> Vec<Element> {
        if self.inner.stopping.load(Ordering::SeqCst) {
            return bounce(
                &stanza,
                Cond::ServiceUnavailable,
                Some("The group-chat service is shutting down"),
            );
        }
        if to.node().is_none() {
            let listings = self.listings();
            return self
                .inner
                .service
                .handle_domain_stanza(stanza, &listings, &ctx());
        }
        let room = to.to_bare();
        let sent = {
            let rooms = self.rooms();
            rooms.get(&room).map(|h| h.tx.try_send(stanza.clone()))
        };
        match sent {
            Some(Ok(())) => Vec::new(),
            Some(Err(mpsc::error::TrySendError::Full(_))) => bounce(
                &stanza,
                Cond::ResourceConstraint,
                Some("The room is too busy"),
            ),
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => {
                match self.inner.service.on_missing_room(&stanza, &ctx()) {
                    Ok(room) => {
                        self.spawn_room(room, None, Some(stanza));
                        Vec::new()
                    }
                    Err(replies) => replies,
                }
            }
        }
    }

    fn forget(&self, room: &BareJid) {
        self.rooms().remove(room);
    }
}

#[async_trait]
impl Component for MucService {
    fn domain(&self) -> &str {
        &self.inner.service.config().domain
    }

    fn disco_name(&self) -> Option<&str> {
        Some("Chatrooms")
    }

    async fn start(&self, outlet: Weak<dyn Outlet>) -> anyhow::Result<()> {
        let restored = self.restore(outlet).await?;
        if restored > 0 {
            tracing::info!("restored {restored} group-chat rooms");
        }
        Ok(())
    }

    async fn deliver(&self, stanza: Element, to: &Jid) -> Vec<Element> {
        self.dispatch(stanza, to)
    }

    async fn shutdown(&self) {
        self.shutdown_rooms().await;
    }
}

/// What an error reply to `stanza` needs (its name, addresses, id and
/// type), kept while the room takes the stanza itself.
fn reply_header(stanza: &Element) -> Element {
    let mut b = Element::builder(stanza.name(), CLIENT);
    for name in ["id", "from", "to", "type"] {
        if let Some(value) = stanza.attr(name) {
            b = b.attr(nc(name), value);
        }
    }
    b.build()
}

/// Stores what `effects` change in the room's saved state, before any of
/// them is carried out: a removal deletes it, else the last `Save` is
/// stored (each is the whole state). Returns the state now saved, when
/// it changed. `saved` is the state saved so far: deleting a room that
/// was never saved loses nothing when it fails.
async fn persist(
    store: &dyn Store,
    jid: &BareJid,
    effects: &[Effect],
    saved: Option<&str>,
) -> Result<Option<String>, StoreError> {
    if effects.iter().any(|e| matches!(e, Effect::Remove)) {
        match store.room_delete(jid.as_str()).await {
            Err(e) if saved.is_some() => return Err(e),
            Err(e) => tracing::warn!("cannot delete unsaved room {jid}: {e}"),
            Ok(()) => {}
        }
        return Ok(None);
    }
    let last = effects.iter().rev().find_map(|e| match e {
        Effect::Save(state) => Some(state),
        _ => None,
    });
    let Some(state) = last else {
        return Ok(None);
    };
    store.room_save(jid.as_str(), state).await?;
    Ok(Some(state.clone()))
}

/// An unavailable presence: someone left the room, or was removed.
fn is_departure(effect: &Effect) -> bool {
    let stanza = match effect {
        Effect::Send(el) => el,
        Effect::Broadcast { stanza, .. } => stanza,
        Effect::Save(_) | Effect::Remove => return false,
    };
    stanza.name() == "presence" && stanza.attr("type") == Some("unavailable")
}

/// Sends the stanzas of `effects` (at shutdown and after a failed save,
/// where nothing is stored).
async fn send_all(outlet: &dyn Outlet, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Send(el) => outlet.route(el).await,
            Effect::Broadcast { stanza, to } => outlet.broadcast(stanza, to).await,
            Effect::Save(_) | Effect::Remove => {}
        }
    }
}

/// The room `jid` is gone: forgets it, and hands what was queued behind
/// to the service again (it may create the room anew).
async fn hand_back(
    rx: &mut mpsc::Receiver<Element>,
    jid: &BareJid,
    service: &MucService,
    outlet: &dyn Outlet,
) {
    service.forget(jid);
    rx.close();
    while let Ok(pending) = rx.try_recv() {
        let to = Jid::from(jid.clone());
        let target = pending
            .attr("to")
            .and_then(|t| Jid::new(t).ok())
            .unwrap_or(to);
        for reply in service.dispatch(pending, &target) {
            outlet.route(reply).await;
        }
    }
}

/// Runs one room: handles its stanzas in turn and carries out their
/// effects in order.
///
/// What a stanza changes in the room's saved state is stored before any
/// of its effects is carried out, so that nobody is told of a change that
/// a restart would lose. When storing fails, the room cannot keep the
/// state it moved to, and the sender gets `internal-server-error` instead
/// of its answer. The room goes back to its last saved state (`saved`),
/// which is what a restart would bring back (a room never saved is gone,
/// as after a restart), and that state has no occupants: those the
/// stanza removed get their unavailable presences, the others are told
/// they left with status 332 (as at a shutdown), and may join again. No
/// other effect of the stanza is carried out.
async fn room_task(
    mut room: Room,
    mut saved: Option<String>,
    mut rx: mpsc::Receiver<Element>,
    outlet: Weak<dyn Outlet>,
    listing: Arc<Mutex<Option<RoomListing>>>,
    service: MucService,
) {
    let jid = room.jid().clone();
    let store = service.inner.store.clone();
    while let Some(stanza) = rx.recv().await {
        let Some(outlet) = outlet.upgrade() else {
            return;
        };
        let request = reply_header(&stanza);
        let effects = room.handle(stanza, &ctx());
        match persist(store.as_ref(), &jid, &effects, saved.as_deref()).await {
            Ok(Some(state)) => saved = Some(state),
            Ok(None) => {}
            Err(e) => {
                tracing::error!("cannot save room {jid}, back to its saved state: {e}");
                if let Some(reply) = error_reply(
                    &request,
                    Cond::InternalServerError,
                    Some("The room could not be saved"),
                ) {
                    outlet.route(reply).await;
                }
                // Whoever the room let go of while handling the stanza no
                // longer counts as an occupant: tell them they left. The
                // others leave now, with status 332.
                let departures = effects.into_iter().filter(is_departure).collect();
                send_all(outlet.as_ref(), departures).await;
                send_all(outlet.as_ref(), room.shutdown()).await;
                let config = service.inner.service.config().clone();
                match saved
                    .as_deref()
                    .map(|state| Room::restore(jid.clone(), state, config))
                {
                    Some(Ok(restored)) => {
                        room = restored;
                        if let Ok(mut l) = listing.lock() {
                            *l = room.listing();
                        }
                        continue;
                    }
                    Some(Err(e)) => tracing::error!("cannot restore room {jid}: {e}"),
                    None => {}
                }
                hand_back(&mut rx, &jid, &service, outlet.as_ref()).await;
                return;
            }
        }
        if let Ok(mut l) = listing.lock() {
            *l = room.listing();
        }
        for effect in effects {
            match effect {
                Effect::Send(el) => outlet.route(el).await,
                Effect::Broadcast { stanza, to } => outlet.broadcast(stanza, to).await,
                // Stored above.
                Effect::Save(_) => {}
                Effect::Remove => {
                    hand_back(&mut rx, &jid, &service, outlet.as_ref()).await;
                    return;
                }
            }
        }
    }
    // The queue closed: the service is shutting down.
    if let Some(outlet) = outlet.upgrade() {
        send_all(outlet.as_ref(), room.shutdown()).await;
    }
}
