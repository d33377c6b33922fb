//! The SQLite backend: one database file, opened in WAL mode.
//!
//! Durability: `synchronous = FULL`, so a transaction that committed is on
//! disk before its method returns. Concurrency: readers run beside the one
//! writer (WAL); writers wait for each other up to [`BUSY_TIMEOUT`], also
//! across processes, so `conclave user add` can run beside the server.
//!
//! Lost data: a database that is missing or empty looks exactly like a
//! new one, so whether the data directory ever held data is recorded
//! outside the database, in a marker file beside it (`.<file>.populated`:
//! hidden and not matched by `<file>*`, so that removing the database's
//! files leaves it), written as soon as the database holds an account or
//! a room (at open, or by the first `create_account` or `room_save`). A
//! database that is
//! missing, zero-length or without Conclave's schema, next to that marker,
//! was lost or replaced: it is refused unless [`OpenOptions::allow_empty`]
//! says to start anew. Deleting every account later leaves the schema, so
//! it is not mistaken for a loss. A database that cannot be written to
//! (a read-only file or directory) is refused at open too, rather than
//! failing every write later.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Executor};
use tokio::io::AsyncWriteExt;

use crate::sql::{pool_options, Dialect, SqlStore};
use crate::{OpenOptions, Result, StoreError};

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

/// What the data marker of a database says, for whoever finds it.
const MARKER_TEXT: &str = "This file records that the Conclave database beside it has held \
accounts or rooms. While it is here, Conclave refuses to start on that database if it is \
missing or empty (lost or replaced). To start anew with an empty database on purpose, start \
once with the option that allows an empty store (conclave serve --allow-empty-store); this \
file is then removed.\n";

/// The marker that says a database held data (see the module's
/// documentation).
pub(crate) struct DataMarker {
    path: PathBuf,
    written: AtomicBool,
}

impl DataMarker {
    fn new(path: PathBuf) -> DataMarker {
        DataMarker {
            path,
            written: AtomicBool::new(false),
        }
    }

    /// Records (once per store, on disk before it returns) that the
    /// database holds data. A failure is logged, and retried at the next
    /// write that calls this: the data itself was stored.
    pub(crate) async fn write(&self) {
        if self.written.load(Ordering::Relaxed) {
            return;
        }
        let written = async {
            let mut file = tokio::fs::File::create(&self.path).await?;
            file.write_all(MARKER_TEXT.as_bytes()).await?;
            file.sync_all().await
        };
        match written.await {
            Ok(()) => self.written.store(true, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(marker = %self.path.display(), "cannot write the data marker: {e}")
            }
        }
    }
}

/// The data marker of the database at `path`: `.<file>.populated` beside it.
fn marker_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".populated");
    path.with_file_name(name)
}

/// The database has no Conclave schema (a migrated database has the
/// migrator's table). Errors (a damaged file) are left to the migration,
/// which reports them.
async fn lacks_schema(conn: &mut SqliteConnection) -> bool {
    let found: Result<i64, sqlx::Error> = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *conn)
    .await;
    matches!(found, Ok(0))
}

/// Whether the database holds at least one account or room.
async fn holds_data(conn: &mut SqliteConnection) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM accounts LIMIT 1)) \
         + (SELECT COUNT(*) FROM (SELECT 1 FROM rooms LIMIT 1))",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// Fails unless the database can be written to: a write that is rolled
/// back at once.
async fn check_writable(conn: &mut SqliteConnection, path: &Path) -> Result<()> {
    let probe = async {
        conn.execute("BEGIN IMMEDIATE").await?;
        let created = conn
            .execute("CREATE TABLE conclave_write_probe (x INTEGER)")
            .await;
        conn.execute("ROLLBACK").await?;
        created.map(|_| ())
    };
    probe.await.map_err(|e| {
        StoreError::Database(format!(
            "the database {} cannot be written to (is the file or its directory read-only?): {e}",
            path.display()
        ))
    })
}

/// Opens the database file at `path`, creating it and its directory when
/// missing, and brings its schema up to date; refuses a lost database
/// and one that cannot be written to (see the module's documentation).
pub(crate) async fn open(path: PathBuf, open_options: OpenOptions) -> Result<SqlStore> {
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

    let marker = marker_path(&path);
    // Missing or zero-length: look without connecting, which would create
    // or write the file.
    let blank = match tokio::fs::metadata(&path).await {
        Ok(m) => m.len() == 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            return Err(StoreError::Database(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    if blank && tokio::fs::try_exists(&marker).await.unwrap_or(true) {
        refuse_or_forget(&path, &marker, open_options).await?;
    }

    // WAL mode is a property of the file: set once here, with the schema.
    let opening = |e: sqlx::Error| StoreError::Database(format!("opening {}: {e}", path.display()));
    let mut conn = options.connect().await.map_err(opening)?;
    if !blank
        && lacks_schema(&mut conn).await
        && tokio::fs::try_exists(&marker).await.unwrap_or(true)
    {
        if let Err(e) = refuse_or_forget(&path, &marker, open_options).await {
            conn.close().await?;
            return Err(e);
        }
    }
    MIGRATOR.run(&mut conn).await.map_err(|e| {
        StoreError::Database(format!(
            "schema migration of {} failed: {e}",
            path.display()
        ))
    })?;
    check_writable(&mut conn, &path).await?;
    let populated = holds_data(&mut conn).await?;
    conn.close().await?;
    let marker = DataMarker::new(marker);
    if populated {
        marker.write().await;
    }

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
    Ok(SqlStore::new(pool, &DIALECT).with_marker(marker))
}

/// The database at `path` is lost while `marker` says it held data:
/// refuses it, or, when allowed, forgets the marker and goes on.
async fn refuse_or_forget(path: &Path, marker: &Path, options: OpenOptions) -> Result<()> {
    if !options.allow_empty {
        return Err(StoreError::EmptyDatabase {
            database: path.to_owned(),
            marker: marker.to_owned(),
        });
    }
    tracing::warn!(
        database = %path.display(),
        "the database held accounts or rooms and is now missing or empty: starting anew, as allowed"
    );
    match tokio::fs::remove_file(marker).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Database(format!(
            "removing {}: {e}",
            marker.display()
        ))),
    }
}
