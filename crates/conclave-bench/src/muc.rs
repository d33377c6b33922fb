//! Scenario 3, group chat fan-out: R rooms of M occupants, every occupant
//! sending stamped groupchat messages at a set rate; every occupant (the
//! sender included, as XEP-0045 reflects messages) should get each one.
//! Also the room-joining code used by the idle scenario.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use conclave_scansion::client::Client;
use conclave_scansion::xml::escape;
use indicatif::ProgressBar;
use minidom::Element;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::conn::Target;
use crate::flow::{run_step, FlowPlan, FlowResult};
use crate::payload::{new_run_id, Clock};

const NS_CLIENT: &str = "jabber:client";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";

/// Shape and pace of one group-chat step.
#[derive(Debug, Clone)]
pub struct MucLoad {
    /// Number of rooms.
    pub rooms: usize,
    /// Occupants per room.
    pub occupants: usize,
    /// Messages per second per occupant.
    pub rate: f64,
    /// Sending time.
    pub duration: Duration,
    /// Time allowed for stragglers.
    pub drain: Duration,
    /// Minimum body size.
    pub body_size: usize,
    /// p99 limit for a sustained step.
    pub p99_limit_ms: f64,
}

/// The room of client `i` when rooms hold `per_room` occupants each.
pub fn room_of(i: usize, per_room: usize) -> usize {
    i / per_room.max(1)
}

/// The bare JID of room `r` in run `run`.
pub fn room_jid(target: &Target, run: u32, r: usize) -> String {
    format!("bench{run:08x}r{r}@{}", target.muc_domain)
}

/// Runs one step: log in, create and join rooms, send, log out.
pub async fn run(
    target: &Arc<Target>,
    load: &MucLoad,
    clock: Clock,
    progress: &ProgressBar,
) -> Result<FlowResult> {
    if load.occupants == 0 || load.rooms == 0 {
        bail!("need at least one room and one occupant");
    }
    let n = load.rooms * load.occupants;
    let run = new_run_id();
    progress.set_message("logging in");
    let clients = target
        .login_many(1, n, Some("<presence/>"), progress)
        .await?;
    progress.set_message("joining rooms");
    let clients = join_rooms(target, clients, load.occupants, run).await?;
    let destinations = (0..n)
        .map(|i| room_jid(target, run, room_of(i, load.occupants)))
        .collect();
    let per_room = load.occupants;
    let plan = FlowPlan {
        destinations,
        message_type: "groupchat",
        fanout: per_room as u64,
        expected_from: Arc::new(move |me, sender| {
            room_of(me, per_room) == room_of(sender as usize, per_room)
        }),
        rate: load.rate,
        duration: load.duration,
        drain: load.drain,
        body_size: load.body_size,
        p99_limit_ms: load.p99_limit_ms,
        run,
    };
    run_step(clients, plan, clock, progress).await
}

/// Puts clients into rooms of `per_room` (client `i` into room
/// `i / per_room`): the first of each room creates it and accepts the
/// default configuration, then the others join. Returns the clients in
/// their original order once everyone is in.
pub async fn join_rooms(
    target: &Arc<Target>,
    clients: Vec<Client>,
    per_room: usize,
    run: u32,
) -> Result<Vec<Client>> {
    let total = clients.len();
    let sem = Arc::new(Semaphore::new(target.login_concurrency.max(1)));
    let timeout = Duration::from_secs(target.login_timeout.max(1));
    let mut rooms: Vec<Vec<(usize, Client)>> = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let r = room_of(i, per_room);
        if rooms.len() <= r {
            rooms.push(Vec::new());
        }
        if let Some(room) = rooms.get_mut(r) {
            room.push((i, c));
        }
    }
    let mut set = JoinSet::new();
    for (r, members) in rooms.into_iter().enumerate() {
        let room = room_jid(target, run, r);
        let sem = Arc::clone(&sem);
        set.spawn(async move { join_one_room(room, members, sem, timeout).await });
    }
    let mut slots: Vec<Option<Client>> = (0..total).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        for (i, c) in joined.map_err(|e| anyhow!("join task failed: {e}"))?? {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(c);
            }
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.ok_or_else(|| anyhow!("client {i} did not join its room")))
        .collect()
}

async fn join_one_room(
    room: String,
    members: Vec<(usize, Client)>,
    sem: Arc<Semaphore>,
    timeout: Duration,
) -> Result<Vec<(usize, Client)>> {
    let mut members = members.into_iter();
    let Some((first_i, mut creator)) = members.next() else {
        return Ok(Vec::new());
    };
    {
        let _permit = sem.acquire().await.map_err(|e| anyhow!("{e}"))?;
        let created = tokio::time::timeout(timeout, join(&mut creator, &room, first_i))
            .await
            .map_err(|_| anyhow!("creating {room} timed out"))??;
        if created {
            tokio::time::timeout(timeout, accept_default_config(&mut creator, &room))
                .await
                .map_err(|_| anyhow!("configuring {room} timed out"))??;
        }
    }
    let mut out = vec![(first_i, creator)];
    let mut set = JoinSet::new();
    for (i, mut c) in members {
        let room = room.clone();
        let sem = Arc::clone(&sem);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| anyhow!("{e}"))?;
            tokio::time::timeout(timeout, join(&mut c, &room, i))
                .await
                .map_err(|_| anyhow!("joining {room} timed out"))??;
            Ok::<_, anyhow::Error>((i, c))
        });
    }
    while let Some(joined) = set.join_next().await {
        out.push(joined.map_err(|e| anyhow!("join task failed: {e}"))??);
    }
    Ok(out)
}

/// Joins `room` as nick `u<i>`; returns whether the room was created (status
/// 201). Other stanzas that arrive meanwhile are skipped.
async fn join(client: &mut Client, room: &str, i: usize) -> Result<bool> {
    let occupant = format!("{room}/u{i}");
    client
        .send_raw(&format!(
            "<presence to='{}'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
            escape(&occupant)
        ))
        .await
        .context("sending join presence")?;
    loop {
        let el = client
            .recv()
            .await
            .context("waiting for own presence")?
            .ok_or_else(|| anyhow!("the server closed the stream while joining {room}"))?;
        if !el.is("presence", NS_CLIENT) {
            continue;
        }
        let from = el.attr("from").unwrap_or_default();
        if el.attr("type") == Some("error") && from.starts_with(room) {
            bail!("joining {room} failed: {}", String::from(&el));
        }
        if from == occupant || statuses(&el).contains(&110) {
            return Ok(statuses(&el).contains(&201));
        }
    }
}

/// Status codes in a presence's `<x xmlns='...muc#user'/>`.
pub fn statuses(presence: &Element) -> Vec<u16> {
    presence
        .get_child("x", NS_MUC_USER)
        .map(|x| {
            x.children()
                .filter(|c| c.is("status", NS_MUC_USER))
                .filter_map(|c| c.attr("code")?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Submits an empty configuration form (an "instant room", XEP-0045 10.1.2)
/// and waits for the result.
async fn accept_default_config(client: &mut Client, room: &str) -> Result<()> {
    client
        .send_raw(&format!(
            "<iq type='set' to='{}' id='bench-config'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>",
            escape(room)
        ))
        .await
        .context("sending room configuration")?;
    loop {
        let el = client
            .recv()
            .await
            .context("waiting for the configuration result")?
            .ok_or_else(|| anyhow!("the server closed the stream while configuring {room}"))?;
        if el.is("iq", NS_CLIENT) && el.attr("id") == Some("bench-config") {
            return match el.attr("type") {
                Some("result") => Ok(()),
                _ => Err(anyhow!("configuring {room} failed: {}", String::from(&el))),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_filled_in_order() {
        assert_eq!(room_of(0, 10), 0);
        assert_eq!(room_of(9, 10), 0);
        assert_eq!(room_of(10, 10), 1);
        assert_eq!(room_of(5, 0), 5);
    }

    #[test]
    fn status_codes_are_read_from_muc_user() {
        let p: Element = "<presence xmlns='jabber:client' from='r@c/n'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/><status code='110'/><status code='201'/></x></presence>".parse().unwrap();
        assert_eq!(statuses(&p), vec![110, 201]);
        let q: Element =
            "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'/></presence>"
                .parse()
                .unwrap();
        assert!(statuses(&q).is_empty());
    }
}
