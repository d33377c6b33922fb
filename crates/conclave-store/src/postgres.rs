//! The PostgreSQL backend, selected by a `postgres://` URL.
//!
//! Transactions run at READ COMMITTED; writers of one account serialise on
//! a row lock of the account (`SELECT ... FOR UPDATE`), which is what makes
//! the offline limit and roster versions exact under concurrency.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

use crate::sql::{pool_options, Dialect, SqlStore};
use crate::Result;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

const POOL_SIZE: u32 = 10;

static DIALECT: Dialect = Dialect {
    begin_write: "BEGIN",
    lock_account:
        "SELECT id, roster_version FROM accounts WHERE host = $1 AND username = $2 FOR UPDATE",
};

/// Connects to the database at `url` and brings its schema up to date
/// (concurrent openers are serialised by the migrator's advisory lock).
pub(crate) async fn open(url: &str) -> Result<SqlStore> {
    let mut conn = PgConnection::connect(url).await?;
    MIGRATOR.run(&mut conn).await?;
    conn.close().await?;

    sqlx::any::install_default_drivers();
    let pool = pool_options(POOL_SIZE).connect(url).await?;
    tracing::info!("opened PostgreSQL store");
    Ok(SqlStore::new(pool, &DIALECT))
}
