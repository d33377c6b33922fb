//! The [`Store`] implementation shared by SQLite and PostgreSQL.
//!
//! Both backends run these queries through sqlx's `Any` driver; the
//! schemas (`migrations/*`) are kept compatible for that: `$n`
//! placeholders, 0/1 integers for flags, RFC 3339 text for times, a JSON
//! array for roster groups. What differs between the backends is the
//! [`Dialect`].
//!
//! Concurrency: a method that needs several statements runs them in one
//! transaction opened with [`Dialect::begin_write`] and, when it touches an
//! account's data, first locks the account row with
//! [`Dialect::lock_account`], so that writers of one account are
//! serialised (the offline limit, roster versions and `offline_take` rely
//! on it). Every other method is a single statement, atomic by itself.
//! Lists are sorted here, in byte order, so that both backends agree
//! whatever the database collation.
//!
//! Failures: a transaction that fails (a statement, or the `COMMIT`
//! itself, as on a full disk) is rolled back when it is dropped. The
//! database may have ended it already (SQLite rolls back by itself on some
//! errors, `SQLITE_FULL` among them), and the `ROLLBACK` then fails too,
//! leaving the connection marked as inside a transaction where no
//! transaction can begin. [`pool_options`] closes such a connection when
//! it goes back to the pool, and the pool opens a fresh one: once the
//! cause is gone (space freed), every write works again without a restart.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Row, Transaction};

use crate::sqlite::DataMarker;
use crate::{
    Credentials, Result, RosterItem, ScramKeys, Store, StoreError, StoredStanza, Subscription,
};

/// The SQL that differs between the backends.
pub(crate) struct Dialect {
    /// Starts a transaction that is going to write. SQLite needs
    /// `BEGIN IMMEDIATE`: a deferred transaction that read first cannot
    /// always take the write lock later, even after waiting.
    pub begin_write: &'static str,
    /// Selects `id, roster_version` of the account `($1, $2)` and keeps
    /// other writers of it out until the transaction ends.
    pub lock_account: &'static str,
}

/// The pool settings both backends use: `size` connections, and none goes
/// back to the pool still inside a transaction.
pub(crate) fn pool_options(size: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(size)
        .after_release(|conn, _| Box::pin(fit_for_reuse(conn)))
}

/// Whether a connection coming back to the pool may be used again: `false`
/// (the pool closes it) when it is still inside a transaction after the
/// `ROLLBACK` of its dropped transaction ran.
async fn fit_for_reuse(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // A dropped transaction only queues its ROLLBACK: let it run first.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("closing a database connection whose failed transaction did not roll back");
        return Ok(false);
    }
    Ok(true)
}

/// A store over a pool of `Any` connections to one database.
pub(crate) struct SqlStore {
    pool: AnyPool,
    dialect: &'static Dialect,
    /// SQLite: the marker written once the database holds an account or a
    /// room (see `sqlite.rs`).
    marker: Option<DataMarker>,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(e.to_string()),
            // The account vanished under a concurrent write.
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NoSuchAccount,
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("schema migration failed: {e}"))
    }
}

const ROSTER_COLUMNS: &str = "r.jid, r.name, r.subscription, r.ask, r.approved, r.group_names";

fn subscription_to_sql(s: Subscription) -> &'static str {
    match s {
        Subscription::None => "none",
        Subscription::To => "to",
        Subscription::From => "from",
        Subscription::Both => "both",
    }
}

fn subscription_from_sql(s: &str) -> Result<Subscription> {
    match s {
        "none" => Ok(Subscription::None),
        "to" => Ok(Subscription::To),
        "from" => Ok(Subscription::From),
        "both" => Ok(Subscription::Both),
        other => Err(StoreError::Corrupt(format!(
            "unknown subscription state {other:?}"
        ))),
    }
}

fn flag_from_sql(row: &AnyRow, column: &str) -> Result<bool> {
    match row.try_get::<i64, _>(column)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(StoreError::Corrupt(format!(
            "{column} is {other}, not 0 or 1"
        ))),
    }
}

fn stamp_to_sql(stamp: &DateTime<Utc>) -> String {
    // Fixed width, so that the text sorts like the time.
    stamp.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn stamp_from_sql(row: &AnyRow, column: &str) -> Result<DateTime<Utc>> {
    let text: String = row.try_get(column)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{column} {text:?}: {e}")))
}

fn stanza_from_row(row: &AnyRow) -> Result<StoredStanza> {
    Ok(StoredStanza {
        xml: row.try_get("xml")?,
        stamp: stamp_from_sql(row, "stamp")?,
    })
}

fn roster_item_from_row(row: &AnyRow) -> Result<RosterItem> {
    let groups: String = row.try_get("group_names")?;
    let subscription: String = row.try_get("subscription")?;
    Ok(RosterItem {
        jid: row.try_get("jid")?,
        name: row.try_get("name")?,
        subscription: subscription_from_sql(&subscription)?,
        ask: flag_from_sql(row, "ask")?,
        approved: flag_from_sql(row, "approved")?,
        groups: serde_json::from_str(&groups)
            .map_err(|e| StoreError::Corrupt(format!("roster groups {groups:?}: {e}")))?,
    })
}

fn scram_from_row(row: &AnyRow, hash: &str) -> Result<ScramKeys> {
    let iterations: i64 = row.try_get(format!("{hash}_iterations").as_str())?;
    Ok(ScramKeys {
        salt: row.try_get(format!("{hash}_salt").as_str())?,
        iterations: u32::try_from(iterations)
            .map_err(|_| StoreError::Corrupt(format!("{hash} iteration count {iterations}")))?,
        salted_password: row.try_get(format!("{hash}_salted_password").as_str())?,
    })
}

/// Binds the six credential columns, in the order `sha1_salt,
/// sha1_iterations, sha1_salted_password, sha256_salt, ...`.
fn bind_credentials<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    creds: &'q Credentials,
) -> Query<'q, Any, AnyArguments<'q>> {
    [&creds.sha1, &creds.sha256]
        .into_iter()
        .fold(query, |q, keys| {
            q.bind(keys.salt.as_slice())
                .bind(i64::from(keys.iterations))
                .bind(keys.salted_password.as_slice())
        })
}

/// `Ok` when the statement touched a row, `err` otherwise.
fn touched(done: AnyQueryResult, err: StoreError) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(err);
    }
    Ok(())
}

/// Two text columns of every row, sorted.
fn sorted_pairs(rows: &[AnyRow], first: &str, second: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = rows
        .iter()
        .map(|r| Ok((r.try_get(first)?, r.try_get(second)?)))
        .collect::<Result<Vec<(String, String)>>>()?;
    pairs.sort_unstable();
    Ok(pairs)
}

fn to_version(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("roster version {v}")))
}

/// The part of a bare JID after '@', which `room_list` matches.
fn room_domain(room: &str) -> Option<&str> {
    room.split_once('@').map(|(_, domain)| domain)
}

impl SqlStore {
    pub(crate) fn new(pool: AnyPool, dialect: &'static Dialect) -> Self {
        SqlStore {
            pool,
            dialect,
            marker: None,
        }
    }

    pub(crate) fn with_marker(self, marker: DataMarker) -> Self {
        SqlStore {
            marker: Some(marker),
            ..self
        }
    }

    /// After a write that stored an account or a room.
    async fn holds_data(&self) {
        if let Some(marker) = &self.marker {
            marker.write().await;
        }
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(self.pool.begin_with(self.dialect.begin_write).await?)
    }

    /// Locks the account for the rest of `tx`; its `(id, roster_version)`.
    async fn lock_account(
        &self,
        tx: &mut Transaction<'static, Any>,
        host: &str,
        user: &str,
    ) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query(self.dialect.lock_account)
            .bind(host)
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("roster_version")?)))
            .transpose()
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn create_account(&self, host: &str, user: &str, creds: &Credentials) -> Result<()> {
        let query = sqlx::query(
            "INSERT INTO accounts (host, username, sha1_salt, sha1_iterations, \
             sha1_salted_password, sha256_salt, sha256_iterations, sha256_salted_password) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (host, username) DO NOTHING",
        )
        .bind(host)
        .bind(user);
        let done = bind_credentials(query, creds).execute(&self.pool).await?;
        touched(done, StoreError::AlreadyExists)?;
        self.holds_data().await;
        Ok(())
    }

    async fn set_credentials(&self, host: &str, user: &str, creds: &Credentials) -> Result<()> {
        let query = sqlx::query(
            "UPDATE accounts SET sha1_salt = $3, sha1_iterations = $4, sha1_salted_password = $5, \
             sha256_salt = $6, sha256_iterations = $7, sha256_salted_password = $8 \
             WHERE host = $1 AND username = $2",
        )
        .bind(host)
        .bind(user);
        let done = bind_credentials(query, creds).execute(&self.pool).await?;
        touched(done, StoreError::NoSuchAccount)
    }

    async fn get_credentials(&self, host: &str, user: &str) -> Result<Option<Credentials>> {
        let row = sqlx::query(
            "SELECT sha1_salt, sha1_iterations, sha1_salted_password, \
             sha256_salt, sha256_iterations, sha256_salted_password \
             FROM accounts WHERE host = $1 AND username = $2",
        )
        .bind(host)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Credentials {
                sha1: scram_from_row(&r, "sha1")?,
                sha256: scram_from_row(&r, "sha256")?,
            })
        })
        .transpose()
    }

    async fn delete_account(&self, host: &str, user: &str) -> Result<()> {
        // Everything the account owns goes with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM accounts WHERE host = $1 AND username = $2")
            .bind(host)
            .bind(user)
            .execute(&self.pool)
            .await?;
        touched(done, StoreError::NoSuchAccount)
    }

    async fn list_accounts(&self, host: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT username FROM accounts WHERE host = $1")
            .bind(host)
            .fetch_all(&self.pool)
            .await?;
        let mut users = rows
            .iter()
            .map(|r| r.try_get("username"))
            .collect::<Result<Vec<String>, _>>()?;
        users.sort_unstable();
        Ok(users)
    }

    async fn roster_get(&self, host: &str, user: &str) -> Result<(u64, Vec<RosterItem>)> {
        // One statement, hence one snapshot: the version matches the items.
        let rows = sqlx::query(&format!(
            "SELECT a.roster_version, {ROSTER_COLUMNS} FROM accounts a \
             LEFT JOIN roster_items r ON r.account_id = a.id \
             WHERE a.host = $1 AND a.username = $2"
        ))
        .bind(host)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok((0, Vec::new()));
        };
        let version = to_version(first.try_get("roster_version")?)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            // A NULL jid is the LEFT JOIN's row for an empty roster.
            if row.try_get::<Option<String>, _>("jid")?.is_some() {
                items.push(roster_item_from_row(row)?);
            }
        }
        items.sort_unstable_by(|a, b| a.jid.cmp(&b.jid));
        Ok((version, items))
    }

    async fn roster_get_item(
        &self,
        host: &str,
        user: &str,
        jid: &str,
    ) -> Result<Option<RosterItem>> {
        let row = sqlx::query(&format!(
            "SELECT {ROSTER_COLUMNS} FROM roster_items r JOIN accounts a ON a.id = r.account_id \
             WHERE a.host = $1 AND a.username = $2 AND r.jid = $3"
        ))
        .bind(host)
        .bind(user)
        .bind(jid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(roster_item_from_row).transpose()
    }

    async fn roster_set(&self, host: &str, user: &str, item: &RosterItem) -> Result<u64> {
        let groups = serde_json::to_string(&item.groups)
            .map_err(|e| StoreError::Database(format!("encoding roster groups: {e}")))?;
        let mut tx = self.begin_write().await?;
        // Bumping the version first also locks the account row.
        let row = sqlx::query(
            "UPDATE accounts SET roster_version = roster_version + 1 \
             WHERE host = $1 AND username = $2 RETURNING id, roster_version",
        )
        .bind(host)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NoSuchAccount)?;
        let account: i64 = row.try_get("id")?;
        let version: i64 = row.try_get("roster_version")?;
        sqlx::query(
            "INSERT INTO roster_items (account_id, jid, name, subscription, ask, approved, group_names) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_id, jid) DO UPDATE SET \
             name = excluded.name, subscription = excluded.subscription, ask = excluded.ask, \
             approved = excluded.approved, group_names = excluded.group_names",
        )
        .bind(account)
        .bind(item.jid.as_str())
        .bind(item.name.as_deref())
        .bind(subscription_to_sql(item.subscription))
        .bind(i16::from(item.ask))
        .bind(i16::from(item.approved))
        .bind(groups)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        to_version(version)
    }

    async fn roster_remove(&self, host: &str, user: &str, jid: &str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let (account, version) = self
            .lock_account(&mut tx, host, user)
            .await?
            .ok_or(StoreError::NoSuchAccount)?;
        let done = sqlx::query("DELETE FROM roster_items WHERE account_id = $1 AND jid = $2")
            .bind(account)
            .bind(jid)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            // Nothing changed, so neither does the version.
            return to_version(version);
        }
        let version: i64 = sqlx::query_scalar(
            "UPDATE accounts SET roster_version = roster_version + 1 WHERE id = $1 RETURNING roster_version",
        )
        .bind(account)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        to_version(version)
    }

    async fn sub_request_put(
        &self,
        host: &str,
        user: &str,
        from: &str,
        stanza: &StoredStanza,
    ) -> Result<()> {
        // The WHERE clause also keeps SQLite from reading ON CONFLICT as a join.
        let done = sqlx::query(
            "INSERT INTO subscription_requests (account_id, from_jid, xml, stamp) \
             SELECT id, $3, $4, $5 FROM accounts WHERE host = $1 AND username = $2 \
             ON CONFLICT (account_id, from_jid) DO UPDATE SET xml = excluded.xml, stamp = excluded.stamp",
        )
        .bind(host)
        .bind(user)
        .bind(from)
        .bind(stanza.xml.as_str())
        .bind(stamp_to_sql(&stanza.stamp))
        .execute(&self.pool)
        .await?;
        touched(done, StoreError::NoSuchAccount)
    }

    async fn sub_request_remove(&self, host: &str, user: &str, from: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM subscription_requests WHERE from_jid = $3 AND account_id = \
             (SELECT id FROM accounts WHERE host = $1 AND username = $2)",
        )
        .bind(host)
        .bind(user)
        .bind(from)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sub_request_list(
        &self,
        host: &str,
        user: &str,
    ) -> Result<Vec<(String, StoredStanza)>> {
        let rows = sqlx::query(
            "SELECT s.from_jid, s.xml, s.stamp FROM subscription_requests s \
             JOIN accounts a ON a.id = s.account_id WHERE a.host = $1 AND a.username = $2",
        )
        .bind(host)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let mut requests = rows
            .iter()
            .map(|r| Ok((r.try_get("from_jid")?, stanza_from_row(r)?)))
            .collect::<Result<Vec<(String, StoredStanza)>>>()?;
        requests.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(requests)
    }

    async fn offline_push(
        &self,
        host: &str,
        user: &str,
        msg: &StoredStanza,
        limit: usize,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let (account, _) = self
            .lock_account(&mut tx, host, user)
            .await?
            .ok_or(StoreError::NoSuchAccount)?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM offline_messages WHERE account_id = $1")
                .bind(account)
                .fetch_one(&mut *tx)
                .await?;
        if usize::try_from(count).map_or(true, |count| count >= limit) {
            return Err(StoreError::QuotaExceeded);
        }
        sqlx::query("INSERT INTO offline_messages (account_id, xml, stamp) VALUES ($1, $2, $3)")
            .bind(account)
            .bind(msg.xml.as_str())
            .bind(stamp_to_sql(&msg.stamp))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn offline_take(&self, host: &str, user: &str) -> Result<Vec<StoredStanza>> {
        let mut tx = self.begin_write().await?;
        let Some((account, _)) = self.lock_account(&mut tx, host, user).await? else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT xml, stamp FROM offline_messages WHERE account_id = $1 ORDER BY id",
        )
        .bind(account)
        .fetch_all(&mut *tx)
        .await?;
        // Decode before deleting: on bad data nothing is lost.
        let messages = rows
            .iter()
            .map(stanza_from_row)
            .collect::<Result<Vec<_>>>()?;
        sqlx::query("DELETE FROM offline_messages WHERE account_id = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(messages)
    }

    async fn offline_count(&self, host: &str, user: &str) -> Result<usize> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM offline_messages o JOIN accounts a ON a.id = o.account_id \
             WHERE a.host = $1 AND a.username = $2",
        )
        .bind(host)
        .bind(user)
        .fetch_one(&self.pool)
        .await?;
        usize::try_from(count).map_err(|_| StoreError::Corrupt(format!("offline count {count}")))
    }

    async fn kv_get(
        &self,
        host: &str,
        user: &str,
        store: &str,
        key: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT d.value FROM account_data d JOIN accounts a ON a.id = d.account_id \
             WHERE a.host = $1 AND a.username = $2 AND d.store = $3 AND d.item_key = $4",
        )
        .bind(host)
        .bind(user)
        .bind(store)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn kv_set(
        &self,
        host: &str,
        user: &str,
        store: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO account_data (account_id, store, item_key, value) \
             SELECT id, $3, $4, $5 FROM accounts WHERE host = $1 AND username = $2 \
             ON CONFLICT (account_id, store, item_key) DO UPDATE SET value = excluded.value",
        )
        .bind(host)
        .bind(user)
        .bind(store)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        touched(done, StoreError::NoSuchAccount)
    }

    async fn kv_delete(&self, host: &str, user: &str, store: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM account_data WHERE store = $3 AND item_key = $4 AND account_id = \
             (SELECT id FROM accounts WHERE host = $1 AND username = $2)",
        )
        .bind(host)
        .bind(user)
        .bind(store)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn kv_list(&self, host: &str, user: &str, store: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT d.item_key, d.value FROM account_data d JOIN accounts a ON a.id = d.account_id \
             WHERE a.host = $1 AND a.username = $2 AND d.store = $3",
        )
        .bind(host)
        .bind(user)
        .bind(store)
        .fetch_all(&self.pool)
        .await?;
        sorted_pairs(&rows, "item_key", "value")
    }

    async fn room_save(&self, room: &str, state: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO rooms (jid, domain, state) VALUES ($1, $2, $3) \
             ON CONFLICT (jid) DO UPDATE SET domain = excluded.domain, state = excluded.state",
        )
        .bind(room)
        .bind(room_domain(room))
        .bind(state)
        .execute(&self.pool)
        .await?;
        self.holds_data().await;
        Ok(())
    }

    async fn room_delete(&self, room: &str) -> Result<()> {
        sqlx::query("DELETE FROM rooms WHERE jid = $1")
            .bind(room)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn room_list(&self, domain: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT jid, state FROM rooms WHERE domain = $1")
            .bind(domain)
            .fetch_all(&self.pool)
            .await?;
        sorted_pairs(&rows, "jid", "state")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips_and_rejects_unknown() {
        for s in [
            Subscription::None,
            Subscription::To,
            Subscription::From,
            Subscription::Both,
        ] {
            assert_eq!(subscription_from_sql(subscription_to_sql(s)).unwrap(), s);
        }
        assert!(matches!(
            subscription_from_sql("maybe"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn stamps_keep_nanoseconds_and_sort_as_text() {
        let early = DateTime::from_timestamp(1_000_000_000, 5).unwrap();
        let late = DateTime::from_timestamp(1_000_000_000, 400_000_000).unwrap();
        assert!(stamp_to_sql(&early) < stamp_to_sql(&late));
        let parsed = DateTime::parse_from_rfc3339(&stamp_to_sql(&early)).unwrap();
        assert_eq!(parsed.with_timezone(&Utc), early);
    }

    #[test]
    fn room_domain_is_the_part_after_the_at_sign() {
        assert_eq!(
            room_domain("room@conference.example"),
            Some("conference.example")
        );
        assert_eq!(room_domain("conference.example"), None);
    }
}
