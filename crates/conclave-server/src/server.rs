//! Starting and stopping the server in-process: open the store, prepare
//! TLS, build the router and the group-chat service, bind the listeners and
//! hand each authenticated stream to a session task. [`ServerHandle`] is
//! what the binary and the test suites hold.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use conclave_store::{Store, StoreError};
use jid::BareJid;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use xmpp_parsers::stream_error::DefinedCondition as StreamCond;

use crate::config::Config;
use crate::edge::listener::{self, ListenerSettings};
use crate::services::muc::MucService;
use crate::edge::negotiate::{Authenticated, NegotiationContext};
use crate::hub::router::{Router, RouterSettings};
use crate::edge::stream::StreamLimits;
use crate::edge::tls::HostTlsSettings;
use crate::edge::auth;
use crate::hub::session;

/// A running server.
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    store: Arc<dyn Store>,
    router: Arc<Router>,
    accept_tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    alive_tx: mpsc::Sender<()>,
    alive_rx: mpsc::Receiver<()>,
}

impl ServerHandle {
    /// The bound client listener addresses (actual ports when 0 was asked).
    pub fn c2s_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The router (for tests and diagnostics).
    pub fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    /// Stops accepting, empties the group-chat rooms (status 332), closes
    /// every session with `system-shutdown` and waits (up to 10 seconds)
    /// for the sessions to end.
    pub async fn shutdown(self) {
        let ServerHandle {
            accept_tasks,
            shutdown,
            alive_tx,
            mut alive_rx,
            router,
            ..
        } = self;
        for t in &accept_tasks {
            t.abort();
        }
        // Rooms first, so that occupants get their status 332 presences
        // while their sessions are still open.
        router.muc.shutdown().await;
        let _ = shutdown.send(true);
        router.kick_all(StreamCond::SystemShutdown, "Server shutting down");
        drop(alive_tx);
        let _ = tokio::time::timeout(Duration::from_secs(10), alive_rx.recv()).await;
        router.muc.stop();
    }

    /// Resolves when every listener stopped (normally never).
    pub async fn wait(&mut self) {
        for t in &mut self.accept_tasks {
            let _ = t.await;
        }
    }
}

/// Creates an account, deriving its SCRAM keys from the password.
pub async fn add_user(store: &dyn Store, jid: &BareJid, password: &str) -> Result<(), StoreError> {
    let node = jid.node().ok_or(StoreError::NoSuchAccount)?;
    let creds = auth::derive_credentials(password);
    store
        .create_account(jid.domain().as_str(), node.as_str(), &creds)
        .await
}

/// Replaces an account's password.
pub async fn set_password(
    store: &dyn Store,
    jid: &BareJid,
    password: &str,
) -> Result<(), StoreError> {
    let node = jid.node().ok_or(StoreError::NoSuchAccount)?;
    let creds = auth::derive_credentials(password);
    store
        .set_credentials(jid.domain().as_str(), node.as_str(), &creds)
        .await
}

/// Opens the configured store (creating the data directory).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.server.data_dir.display()
        )
    })?;
    let url = config.storage_url();
    conclave_store::open(&url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open storage {}: {e}", redact_password(&url)))
}

/// The storage location with any password in it replaced by `***`, for
/// messages and logs (`postgres://user:secret@host/db` ->
/// `postgres://user:***@host/db`).
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end + 3],
        &authority[..colon],
        &rest[at..]
    )
}

/// Starts the server described by `config`.
pub async fn start(config: Config) -> anyhow::Result<ServerHandle> {
    let problems = config.validate();
    if let Some(p) = problems.first() {
        anyhow::bail!("invalid configuration: {p}");
    }
    let store = open_store(&config).await?;
    let hosts = config.hosts();
    let tls_hosts: Vec<HostTlsSettings> = hosts
        .iter()
        .map(|h| {
            let section = config.host.iter().find(|s| s.name.eq_ignore_ascii_case(h));
            HostTlsSettings {
                host: h.clone(),
                cert: section.and_then(|s| s.tls_cert.clone()),
                key: section.and_then(|s| s.tls_key.clone()),
            }
        })
        .collect();
    let tls = crate::edge::tls::server_config(&tls_hosts, &config.server.data_dir)
        .context("TLS setup failed")?;
    let limits = &config.limits;
    let extra_features = session::extra_features();
    let ctx = Arc::new(NegotiationContext {
        hosts: hosts.clone(),
        tls: Some(tls),
        require_encryption: config.server.require_encryption,
        allow_plaintext_auth: config.server.allow_plaintext_auth,
        limits: StreamLimits {
            max_stanza_bytes: limits.max_stanza_bytes,
            max_depth: limits.max_depth,
        },
        store: store.clone(),
        extra_features,
        auth_throttle: auth::AuthThrottle::default(),
    });
    let muc_config = conclave_muc::ServiceConfig {
        domain: config.muc_domain(),
        admins: config.admin_jids(),
        creation: config.room_creation(),
        local_hosts: hosts.clone(),
        max_history: config.muc.max_history,
        max_occupants: config.muc.max_occupants,
    };
    let muc = MucService::new(muc_config, store.clone(), limits.room_queue);
    let router = Arc::new(Router::new(
        RouterSettings {
            hosts: hosts.clone(),
            muc_domain: config.muc_domain(),
            max_offline_messages: limits.max_offline_messages,
            session_queue: limits.session_queue,
            room_queue: limits.room_queue,
            im: crate::hub::router::ImSettings {
                im: config.im.clone(),
                contact: config.contact.clone(),
                external_services: config.external_service.clone(),
            },
        },
        store.clone(),
        muc,
    ));
    let restored = router.muc.start(&router).await?;
    if restored > 0 {
        tracing::info!("restored {restored} group-chat rooms");
    }

    let (shutdown, shutdown_rx) = watch::channel(false);
    let (alive_tx, alive_rx) = mpsc::channel(1);
    let on_session: Arc<dyn Fn(Authenticated) + Send + Sync> = {
        let router = router.clone();
        // A weak sender: connections still negotiating must not keep
        // shutdown waiting.
        let alive = alive_tx.downgrade();
        Arc::new(move |auth: Authenticated| match alive.upgrade() {
            Some(alive) => {
                tokio::spawn(session::run(
                    auth,
                    router.clone(),
                    shutdown_rx.clone(),
                    alive,
                ));
            }
            None => {
                let mut stream = auth.stream;
                tokio::spawn(async move {
                    stream
                        .close(Some((
                            StreamCond::SystemShutdown,
                            "Server shutting down".into(),
                        )))
                        .await;
                });
            }
        })
    };
    let mut addrs = Vec::new();
    let mut accept_tasks = Vec::new();
    for l in config.listeners() {
        let addr: SocketAddr = l
            .addr
            .parse()
            .with_context(|| format!("invalid listener address {:?}", l.addr))?;
        let settings = ListenerSettings {
            addr,
            direct_tls: l.direct_tls,
            max_connections_per_ip: limits.max_connections_per_ip,
        };
        let (bound, accept) = listener::bind(&settings, ctx.clone(), on_session.clone())
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(
            "listening for clients on {bound}{}",
            if l.direct_tls { " (direct TLS)" } else { "" }
        );
        addrs.push(bound);
        accept_tasks.push(tokio::spawn(accept));
    }
    tracing::info!(
        "serving {}; group chat at {}",
        hosts.join(", "),
        config.muc_domain()
    );
    Ok(ServerHandle {
        addrs,
        store,
        router,
        accept_tasks,
        shutdown,
        alive_tx,
        alive_rx,
    })
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn storage_passwords_are_not_shown() {
        assert_eq!(
            redact_password("postgres://conclave:s3cret@127.0.0.1:5432/db"),
            "postgres://conclave:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_password("/var/lib/conclave/db.sqlite"),
            "/var/lib/conclave/db.sqlite"
        );
        assert_eq!(redact_password("sqlite://a:b/c"), "sqlite://a:b/c");
    }
}
