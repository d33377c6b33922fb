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
use crate::edge::auth;
use crate::edge::listener::{self, ListenerSettings};
use crate::edge::negotiate::{Authenticated, NegotiationContext};
use crate::edge::stream::StreamLimits;
use crate::edge::tls::HostTlsSettings;
use crate::hub::dispatch::Modules;
use crate::hub::router::{Component, Router};
use crate::hub::session;
use crate::hub::sessions::Sessions;
use crate::services::muc::MucService;
use crate::services::proxy65::Proxy65;

/// A running server.
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    store: Arc<dyn Store>,
    router: Arc<Router>,
    muc: MucService,
    proxy65: Option<Proxy65>,
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

    /// The group-chat service (for tests and diagnostics).
    pub fn muc(&self) -> &MucService {
        &self.muc
    }

    /// The bytestreams proxy, when enabled (for tests and diagnostics).
    pub fn proxy65(&self) -> Option<&Proxy65> {
        self.proxy65.as_ref()
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
            muc,
            ..
        } = self;
        for t in &accept_tasks {
            t.abort();
        }
        // Components first, so that room occupants get their status 332
        // presences while their sessions are still open.
        router.shutdown_components().await;
        let _ = shutdown.send(true);
        router.kick_all();
        drop(alive_tx);
        let _ = tokio::time::timeout(Duration::from_secs(10), alive_rx.recv()).await;
        muc.stop();
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

/// How the store is opened; the defaults are what [`start`] and
/// [`open_store`] use.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreOptions {
    /// Start on an SQLite database that is missing or empty although it
    /// held accounts or rooms (the `--allow-empty-store` option of the
    /// command line): the operator chose to begin anew.
    pub allow_empty: bool,
}

/// Opens the configured store (creating the data directory).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    open_store_with(config, StoreOptions::default()).await
}

/// [`open_store`], with [`StoreOptions`]. A database that held data and
/// is now missing or empty is refused with a message that names the file
/// and the option to start anyway.
pub async fn open_store_with(
    config: &Config,
    options: StoreOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.server.data_dir.display()
        )
    })?;
    let url = config.storage_url();
    let open_options = conclave_store::OpenOptions {
        allow_empty: options.allow_empty,
    };
    conclave_store::open_with(&url, open_options)
        .await
        .map_err(|e| match e {
            StoreError::EmptyDatabase { .. } => anyhow::anyhow!(
                "refusing to start: {e}; restore the database, or start once with \
                 --allow-empty-store (`conclave serve --allow-empty-store`) to begin anew \
                 with no data"
            ),
            e => anyhow::anyhow!("cannot open storage {}: {e}", redact_password(&url)),
        })
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
    start_with(config, StoreOptions::default()).await
}

/// [`start`], opening the store with `store_options`.
pub async fn start_with(
    config: Config,
    store_options: StoreOptions,
) -> anyhow::Result<ServerHandle> {
    let problems = config.validate();
    if let Some(p) = problems.first() {
        anyhow::bail!("invalid configuration: {p}");
    }
    let store = open_store_with(&config, store_options).await?;
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
    let muc_config = conclave_muc::ServiceConfig {
        domain: config.muc_domain(),
        admins: config.admin_jids(),
        creation: config.room_creation(),
        local_hosts: hosts.clone(),
        max_history: config.muc.max_history,
        max_history_bytes: config.muc.max_history_bytes,
        max_occupants: config.muc.max_occupants,
    };
    let muc = MucService::new(muc_config, store.clone(), limits.room_queue);
    let modules = Modules::new(crate::modules::load(&config))
        .map_err(|e| anyhow::anyhow!("cannot load the modules: {e}"))?;
    let proxy65 = crate::services::proxy65::Settings::from_config(&config)
        .map(crate::services::proxy65::Proxy65::new);
    let mut components: Vec<Arc<dyn Component>> = vec![Arc::new(muc.clone())];
    if let Some(p) = &proxy65 {
        components.push(Arc::new(p.clone()));
    }
    let router = Arc::new(Router::new(
        hosts.clone(),
        Arc::new(Sessions::new(
            limits.session_queue,
            limits.max_sessions_per_account,
        )),
        store.clone(),
        modules,
        components,
    ));
    router.start_components().await?;
    let ctx = Arc::new(NegotiationContext {
        hosts: hosts.clone(),
        tls: Some(tls),
        require_encryption: config.server.require_encryption,
        allow_plaintext_auth: config.server.allow_plaintext_auth,
        limits: StreamLimits {
            max_stanza_bytes: limits.max_stanza_bytes,
            max_depth: limits.max_depth,
            max_attributes: limits.max_attributes,
            max_bytes_per_second: limits.max_bytes_per_second,
        },
        store: store.clone(),
        extra_features: router.stream_features(),
        caps: router.caps(),
        auth_throttle: auth::AuthThrottle::default(),
        decoys: auth::DecoyCredentials::load_or_create(&config.server.data_dir)?,
    });

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
        muc,
        proxy65,
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
