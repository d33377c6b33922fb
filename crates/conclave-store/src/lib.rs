//! Conclave's storage layer.
//!
//! Everything the server persists goes through the [`Store`] trait. Two
//! implementations exist: SQLite (the default, a file in the data
//! directory) and PostgreSQL (selected by a `postgres://` URL). Both pass
//! the same test suite.
//!
//! Accounts are addressed by `(host, username)`, where `username` is the
//! already-nodeprep'd localpart. JIDs of contacts and rooms are passed as
//! their canonical string form; this crate does not parse JIDs.
//!
//! For an account that does not exist, methods that store something (or
//! report a roster version after a change) return
//! [`StoreError::NoSuchAccount`]; reads return nothing and deletions
//! succeed.
//!
//! Layout: [`open`] picks the backend; `sql` holds the queries both
//! backends share (through sqlx's `Any` driver); `sqlite` and `postgres`
//! hold what differs (connection setup, migrations, locking).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

mod postgres;
mod sql;
mod sqlite;

/// How [`open_with`] treats what it finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open an SQLite database that is missing or empty even though its
    /// data marker says it held accounts or rooms (and remove the marker):
    /// the operator chose to start anew. Without it, that is
    /// [`StoreError::EmptyDatabase`].
    pub allow_empty: bool,
}

/// Opens (creating and migrating as needed) the store at `location`:
///
/// - `postgres://...` or `postgresql://...`: a PostgreSQL database;
/// - `sqlite://path`, `sqlite:path` or a plain filesystem path: an SQLite
///   file, created with its parent directory when missing.
///
/// An SQLite database that held accounts or rooms and is now missing or
/// empty is refused ([`StoreError::EmptyDatabase`]), and so is one that
/// cannot be written to (a read-only file or directory).
pub async fn open(location: &str) -> Result<Arc<dyn Store>> {
    open_with(location, OpenOptions::default()).await
}

/// [`open`], with [`OpenOptions`].
pub async fn open_with(location: &str, options: OpenOptions) -> Result<Arc<dyn Store>> {
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::open(location).await?));
    }
    let path = location
        .strip_prefix("sqlite://")
        .or_else(|| location.strip_prefix("sqlite:"))
        .unwrap_or(location);
    if path.is_empty() {
        return Err(StoreError::Database(format!(
            "no database file in storage location {location:?}"
        )));
    }
    Ok(Arc::new(sqlite::open(PathBuf::from(path), options).await?))
}

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("account already exists")]
    AlreadyExists,
    #[error("no such account")]
    NoSuchAccount,
    #[error("storage quota exceeded")]
    QuotaExceeded,
    #[error("database error: {0}")]
    Database(String),
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    /// The SQLite database is missing or empty, yet its data marker (a
    /// file beside it) says it held accounts or rooms: it was lost or
    /// replaced, and starting would silently begin with no data.
    #[error(
        "the database {} is missing or empty, but {} records that it held accounts or rooms",
        database.display(),
        marker.display()
    )]
    EmptyDatabase { database: PathBuf, marker: PathBuf },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// SCRAM parameters for one hash function: the salt, the iteration count
/// and the salted password (`Hi(password, salt, i)`). The clear-text
/// password is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramKeys {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub salted_password: Vec<u8>,
}

/// The credentials of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub sha1: ScramKeys,
    pub sha256: ScramKeys,
}

/// RFC 6121 subscription state of a roster item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subscription {
    None,
    To,
    From,
    Both,
}

/// One roster item (RFC 6121 section 2.1.2), plus the server-side flags
/// that RFC 6121 section 3 needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterItem {
    /// Contact's bare JID, canonical string form.
    pub jid: String,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// `ask='subscribe'`: an outbound request is pending.
    pub ask: bool,
    /// Subscription pre-approved (RFC 6121 section 3.4).
    pub approved: bool,
    pub groups: Vec<String>,
}

/// A stored stanza (offline message, pending subscription request) with
/// the time it was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredStanza {
    /// The stanza, serialised as XML.
    pub xml: String,
    pub stamp: DateTime<Utc>,
}

/// The storage interface. Implementations must be safe to share between
/// tasks; every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- accounts ---------------------------------------------------------
    /// Creates an account; `AlreadyExists` if it is there.
    async fn create_account(&self, host: &str, user: &str, creds: &Credentials) -> Result<()>;
    /// Replaces the credentials; `NoSuchAccount` if absent.
    async fn set_credentials(&self, host: &str, user: &str, creds: &Credentials) -> Result<()>;
    async fn get_credentials(&self, host: &str, user: &str) -> Result<Option<Credentials>>;
    /// Deletes the account and everything it owns (roster, offline
    /// messages, pending requests, key-value data); `NoSuchAccount` if absent.
    async fn delete_account(&self, host: &str, user: &str) -> Result<()>;
    /// Usernames of a host, sorted.
    async fn list_accounts(&self, host: &str) -> Result<Vec<String>>;

    // --- roster (RFC 6121 section 2) ---------------------------------------
    /// The roster and its current version (0 for a roster never written).
    async fn roster_get(&self, host: &str, user: &str) -> Result<(u64, Vec<RosterItem>)>;
    async fn roster_get_item(
        &self,
        host: &str,
        user: &str,
        jid: &str,
    ) -> Result<Option<RosterItem>>;
    /// Inserts or replaces an item; returns the new roster version.
    async fn roster_set(&self, host: &str, user: &str, item: &RosterItem) -> Result<u64>;
    /// Removes an item (no-op when absent); returns the new roster version.
    async fn roster_remove(&self, host: &str, user: &str, jid: &str) -> Result<u64>;

    // --- inbound subscription requests awaiting an answer (RFC 6121 3.1.3) --
    /// Stores (or replaces) the request from `from`, kept whole.
    async fn sub_request_put(
        &self,
        host: &str,
        user: &str,
        from: &str,
        stanza: &StoredStanza,
    ) -> Result<()>;
    async fn sub_request_remove(&self, host: &str, user: &str, from: &str) -> Result<()>;
    async fn sub_request_list(&self, host: &str, user: &str)
        -> Result<Vec<(String, StoredStanza)>>;

    // --- offline messages (XEP-0160) ----------------------------------------
    /// Appends a message; `QuotaExceeded` when the account already holds `limit`.
    async fn offline_push(
        &self,
        host: &str,
        user: &str,
        msg: &StoredStanza,
        limit: usize,
    ) -> Result<()>;
    /// Takes every stored message out, oldest first.
    async fn offline_take(&self, host: &str, user: &str) -> Result<Vec<StoredStanza>>;
    async fn offline_count(&self, host: &str, user: &str) -> Result<usize>;

    // --- per-account key-value data (vCard, private XML, block list, ...) ---
    /// `store` names the feature (`"vcard"`, `"private"`, `"blocklist"`,
    /// ...), `key` the item within it.
    async fn kv_get(
        &self,
        host: &str,
        user: &str,
        store: &str,
        key: &str,
    ) -> Result<Option<String>>;
    async fn kv_set(
        &self,
        host: &str,
        user: &str,
        store: &str,
        key: &str,
        value: &str,
    ) -> Result<()>;
    async fn kv_delete(&self, host: &str, user: &str, store: &str, key: &str) -> Result<()>;
    /// Every `(key, value)` of one store of an account, sorted by key.
    async fn kv_list(&self, host: &str, user: &str, store: &str) -> Result<Vec<(String, String)>>;

    // --- group-chat rooms ---------------------------------------------------
    /// Saves a persistent room's state (an opaque JSON document produced by
    /// the group-chat service), keyed by the room's bare JID.
    async fn room_save(&self, room: &str, state: &str) -> Result<()>;
    async fn room_delete(&self, room: &str) -> Result<()>;
    /// Every saved room whose JID's domain is `domain`.
    async fn room_list(&self, domain: &str) -> Result<Vec<(String, String)>>;
}
