//! Client listener: accepts TCP connections, enforces the per-IP connection
//! limit and negotiates each connection in its own task, handing each
//! authenticated stream to the core.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::TcpStream;
use xmpp_parsers::stream_error::DefinedCondition;

use crate::edge::negotiate::{negotiate, Authenticated, NegotiationContext};
use crate::edge::stream::XmlStream;

/// One listening socket.
#[derive(Clone, Debug)]
pub struct ListenerSettings {
    pub addr: SocketAddr,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS.
    pub direct_tls: bool,
    /// Simultaneous connections allowed from one IP address.
    pub max_connections_per_ip: usize,
}

/// Open connections per IP address.
#[derive(Clone, Default)]
struct ConnectionCounter {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one slot of the counter; frees it when dropped (connection closed).
struct ConnectionSlot {
    counter: ConnectionCounter,
    ip: IpAddr,
}

impl ConnectionCounter {
    fn try_acquire(&self, ip: IpAddr, limit: usize) -> Option<ConnectionSlot> {
        let mut counts = self.counts.lock().ok()?;
        let count = counts.entry(ip).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            counter: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counter.counts.lock() {
            if let Some(count) = counts.get_mut(&self.ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(&self.ip);
                }
            }
        }
    }
}

/// Binds, then returns the bound address (port 0 allowed) and the accept
/// loop future. Each accepted socket (beyond the per-IP limit: closed with
/// a policy-violation stream error) is negotiated in its own task; each
/// authenticated stream is handed to `on_session`, which owns it from then
/// on. The per-IP slot is held until that stream is dropped.
pub async fn bind(
    settings: &ListenerSettings,
    ctx: Arc<NegotiationContext>,
    on_session: Arc<dyn Fn(Authenticated) + Send + Sync>,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()> + Send + 'static)> {
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    let addr = listener.local_addr()?;
    let settings = settings.clone();
    let counter = ConnectionCounter::default();
    let accept_loop = async move {
        tracing::info!(%addr, direct_tls = settings.direct_tls, "listening for clients");
        loop {
            let (socket, peer) = match listener.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little.
                    tracing::warn!(%addr, "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            keepalive(&socket);
            tracing::debug!(%peer, "connection accepted");
            let Some(slot) = counter.try_acquire(peer.ip(), settings.max_connections_per_ip) else {
                tracing::info!(%peer, "too many connections from this address; refused");
                tokio::spawn(refuse(socket, Arc::clone(&ctx)));
                continue;
            };
            let ctx = Arc::clone(&ctx);
            let on_session = Arc::clone(&on_session);
            let direct_tls = settings.direct_tls;
            tokio::spawn(async move {
                match negotiate(socket, peer, direct_tls, ctx).await {
                    Ok(mut auth) => {
                        auth.stream.hold(Box::new(slot));
                        on_session(auth);
                    }
                    Err(e) => {
                        tracing::debug!(%peer, "negotiation ended: {e}");
                        drop(slot);
                    }
                }
            });
        }
    };
    Ok((addr, accept_loop))
}

/// Closes a connection over the per-IP limit with a policy-violation stream
/// error (after reading the peer's header when it comes quickly).
async fn refuse(socket: TcpStream, ctx: Arc<NegotiationContext>) {
    let mut stream = XmlStream::new(socket, ctx.limits.clone());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.next_item()).await;
    stream
        .close(Some((
            DefinedCondition::PolicyViolation,
            "too many connections from your address".to_owned(),
        )))
        .await;
}

/// Idle time before the kernel probes a silent client, and between probes:
/// a peer that vanished without closing (a phone that lost its network)
/// is found in a few minutes even when the server has nothing to send.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(120);
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// TCP keepalive on a client connection (best effort: a platform without
/// it only loses the early detection).
fn keepalive(socket: &tokio::net::TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(e) = socket2::SockRef::from(socket).set_tcp_keepalive(&ka) {
        tracing::debug!("cannot set TCP keepalive: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_limits_and_releases() {
        let c = ConnectionCounter::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let a = c.try_acquire(ip, 2).unwrap();
        let b = c.try_acquire(ip, 2).unwrap();
        assert!(c.try_acquire(ip, 2).is_none());
        assert!(c.try_acquire("192.0.2.8".parse().unwrap(), 2).is_some());
        drop(a);
        let _c = c.try_acquire(ip, 2).unwrap();
        drop(b);
        drop(_c);
        assert!(c.counts.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn client_sockets_get_tcp_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server_side, _) = listener.accept().await.unwrap();
        let sock = socket2::SockRef::from(&server_side);
        assert!(!sock.keepalive().unwrap());
        keepalive(&server_side);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
    }
}
