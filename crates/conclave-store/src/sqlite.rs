//! The SQLite backend: one database file, opened in WAL mode.
//!
//! Durability: `synchronous = FULL`, so a transaction that committed is on
//! disk before its method returns. Concurrency: readers run beside the one
//! writer (WAL); writers wait for each other up to [`BUSY_TIMEOUT`], also
//! across processes, so `conclave user add` can run beside the server.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::sql::{pool_options, Dialect, SqlStore};
use crate::{Result, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for another one (possibly in another process).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite serialises writers anyway; a few connections let readers overlap.
const POOL_SIZE: u32 = 4;

/// Run on every pooled connection. The `Any` driver builds its SQLite
/// connections from a URL, which cannot carry these settings.
const CONNECTION_PRAGMAS: &str =
    "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;";

static DIALECT: Dialect = Dialect {
    // Take the write lock at BEGIN, waiting for it under the busy timeout;
    // it then serialises writers, so locking an account is a plain read.
    begin_write: "BEGIN IMMEDIATE",
    lock_account: "SELECT id, roster_version FROM accounts WHERE host = $1 AND username = $2",
};

/// Opens the database file at `path`, creating it and its directory when
/// missing, and brings its schema up to date.
pub(crate) async fn open(path: PathBuf) -> Result<SqlStore> {
    let path = std::path::absolute(&path)
        .map_err(|e| StoreError::Database(format!("bad database path {}: {e}", path.display())))?;
    if path.to_string_lossy().contains('%') {
        // The pool reaches the file through a URL, where '%' is an escape.
        return Err(StoreError::Database(format!(
            "database path {} must not contain '%'",
            path.display()
        )));
    }
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| StoreError::Database(format!("creating {}: {e}", dir.display())))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);

    // WAL mode is a property of the file: set once here, with the schema.
    let mut conn = options.connect().await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;

    sqlx::any::install_default_drivers();
    let any = AnyConnectOptions::from_str(options.to_url_lossy().as_str())?;
    let pool = pool_options(POOL_SIZE)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(CONNECTION_PRAGMAS).await?;
                Ok(())
            })
        })
        .connect_with(any)
        .await?;
    tracing::info!(path = %path.display(), "opened SQLite store");
    Ok(SqlStore::new(pool, &DIALECT))
}
