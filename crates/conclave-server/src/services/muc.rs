//! Glue between the router and the group-chat state machine
//! (`conclave-muc`): each room runs in its own task that owns its `Room`
//! and a bounded queue; stanzas to the service domain go to `Service`;
//! effects are carried out in order (saves awaited before the sends that
//! follow them). Saved rooms are restored at start; at shutdown every
//! room tells its occupants (status 332) before its task ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use conclave_muc::{Context, Effect, Room, RoomListing, Service, ServiceConfig};
use conclave_store::Store;
use jid::{BareJid, Jid};
use minidom::Element;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use xmpp_parsers::stanza_error::DefinedCondition as Cond;

use crate::hub::router::{Component, Outlet};
use crate::xml::error_reply;

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
                    self.spawn_room(room, None);
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

    fn spawn_room(&self, room: Room, first: Option<Element>) {
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
        let task = tokio::spawn(room_task(room, rx, outlet, listing.clone(), self.clone()));
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
                        self.spawn_room(room, Some(stanza));
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

/// Carries out a room's effects, in order: a save is awaited before the
/// stanzas that follow it are sent.
async fn room_task(
    mut room: Room,
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
        let effects = room.handle(stanza, &ctx());
        if let Ok(mut l) = listing.lock() {
            *l = room.listing();
        }
        for effect in effects {
            match effect {
                Effect::Send(el) => outlet.route(el).await,
                Effect::Broadcast { stanza, to } => outlet.broadcast(stanza, to).await,
                Effect::Save(state) => {
                    if let Err(e) = store.room_save(jid.as_str(), &state).await {
                        tracing::error!("cannot save room {jid}: {e}");
                    }
                }
                Effect::Remove => {
                    if let Err(e) = store.room_delete(jid.as_str()).await {
                        tracing::error!("cannot delete room {jid}: {e}");
                    }
                    service.forget(&jid);
                    // Whatever was queued behind the removal goes through
                    // the service again (it may create the room anew).
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
                    return;
                }
            }
        }
    }
    // The queue closed: the service is shutting down.
    if let Some(outlet) = outlet.upgrade() {
        for effect in room.shutdown() {
            match effect {
                Effect::Send(el) => outlet.route(el).await,
                Effect::Broadcast { stanza, to } => outlet.broadcast(stanza, to).await,
                Effect::Save(_) | Effect::Remove => {}
            }
        }
    }
}
