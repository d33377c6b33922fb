//! The storage test suite: one generic async function per behaviour, run
//! against SQLite (a temporary file) and against PostgreSQL when
//! `CONCLAVE_TEST_POSTGRES_URL` is set (`CONCLAVE_REQUIRE_POSTGRES=1` makes
//! its absence a failure).
//!
//! Every test works on its own host names and room domains, so the
//! PostgreSQL tests can share one database, run in parallel and be rerun.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use conclave_store::{
    Credentials, RosterItem, ScramKeys, Store, StoreError, StoredStanza, Subscription,
};

/// A name no other test (in this run or an earlier one) uses.
fn unique(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{nanos}-{n}", std::process::id())
}

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("conclave-store-test"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a behaviour test gets: a store, its location (to open it again or
/// reach the tables directly) and names of its own.
struct Ctx {
    store: Arc<dyn Store>,
    location: String,
    host: String,
    _dir: Option<TempDir>,
}

impl Ctx {
    async fn sqlite() -> Ctx {
        let dir = TempDir::new();
        let location = format!("sqlite://{}", dir.0.join("conclave.db").display());
        Ctx {
            store: conclave_store::open(&location).await.unwrap(),
            location,
            host: unique("host"),
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Ctx> {
        let Ok(location) = std::env::var("CONCLAVE_TEST_POSTGRES_URL") else {
            if std::env::var("CONCLAVE_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("CONCLAVE_REQUIRE_POSTGRES=1 but CONCLAVE_TEST_POSTGRES_URL is not set");
            }
            println!("skipped: CONCLAVE_TEST_POSTGRES_URL not set");
            return None;
        };
        Some(Ctx {
            store: conclave_store::open(&location).await.unwrap(),
            location,
            host: unique("host"),
            _dir: None,
        })
    }

    /// A direct connection to the database, bypassing the store.
    async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.location).await.unwrap()
    }
}

/// Asserts that a store call failed with the given error.
macro_rules! assert_err {
    ($call:expr, $error:pat) => {
        let result = $call;
        assert!(matches!(result, Err($error)), "{result:?}");
    };
}

fn creds(seed: u8) -> Credentials {
    let keys = |len: usize, iterations: u32| ScramKeys {
        salt: vec![seed; 16],
        iterations,
        salted_password: (0..len).map(|i| seed.wrapping_add(i as u8)).collect(),
    };
    Credentials {
        sha1: keys(20, 4096 + u32::from(seed)),
        sha256: keys(32, 10_000 + u32::from(seed)),
    }
}

async fn creds_of(s: &Arc<dyn Store>, host: &str, user: &str) -> Option<Credentials> {
    s.get_credentials(host, user).await.unwrap()
}

fn stanza(xml: &str, second: i64) -> StoredStanza {
    StoredStanza {
        xml: xml.to_owned(),
        stamp: DateTime::<Utc>::from_timestamp(1_700_000_000 + second, 123_456_789).unwrap(),
    }
}

fn item(jid: &str) -> RosterItem {
    RosterItem {
        jid: jid.to_owned(),
        name: None,
        subscription: Subscription::None,
        ask: false,
        approved: false,
        groups: Vec::new(),
    }
}

// --- accounts ----------------------------------------------------------------

async fn account_create_get_duplicate(t: &Ctx) {
    let s = &t.store;
    assert_eq!(creds_of(s, &t.host, "alice").await, None);
    s.create_account(&t.host, "alice", &creds(1)).await.unwrap();
    assert_eq!(creds_of(s, &t.host, "alice").await, Some(creds(1)));

    assert_err!(
        s.create_account(&t.host, "alice", &creds(2)).await,
        StoreError::AlreadyExists
    );
    assert_eq!(creds_of(s, &t.host, "alice").await, Some(creds(1)));

    // The same username on another host is another account.
    let other = unique("other");
    s.create_account(&other, "alice", &creds(3)).await.unwrap();
    assert_eq!(creds_of(s, &other, "alice").await, Some(creds(3)));
    assert_eq!(creds_of(s, &t.host, "alice").await, Some(creds(1)));
}

async fn account_set_credentials(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "bob", &creds(1)).await.unwrap();
    s.set_credentials(&t.host, "bob", &creds(7)).await.unwrap();
    assert_eq!(creds_of(s, &t.host, "bob").await, Some(creds(7)));

    assert_err!(
        s.set_credentials(&t.host, "nobody", &creds(7)).await,
        StoreError::NoSuchAccount
    );
    assert_eq!(creds_of(s, &t.host, "nobody").await, None);
}

async fn account_delete(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "carol", &creds(1)).await.unwrap();
    s.create_account(&t.host, "dave", &creds(2)).await.unwrap();
    s.delete_account(&t.host, "carol").await.unwrap();
    assert_eq!(creds_of(s, &t.host, "carol").await, None);
    assert_eq!(
        s.list_accounts(&t.host).await.unwrap(),
        vec!["dave".to_owned()]
    );

    assert_err!(
        s.delete_account(&t.host, "carol").await,
        StoreError::NoSuchAccount
    );
    // The name is free again.
    s.create_account(&t.host, "carol", &creds(3)).await.unwrap();
    assert_eq!(creds_of(s, &t.host, "carol").await, Some(creds(3)));
}

async fn account_list_sorted_per_host(t: &Ctx) {
    let s = &t.store;
    assert!(s.list_accounts(&t.host).await.unwrap().is_empty());
    for user in ["zed", "alice", "mike", "Bob", "al"] {
        s.create_account(&t.host, user, &creds(1)).await.unwrap();
    }
    let other = unique("other");
    s.create_account(&other, "eve", &creds(1)).await.unwrap();
    // Byte order, whatever the database's collation.
    assert_eq!(
        s.list_accounts(&t.host).await.unwrap(),
        ["Bob", "al", "alice", "mike", "zed"]
    );
    assert_eq!(s.list_accounts(&other).await.unwrap(), ["eve"]);
}

// --- roster ------------------------------------------------------------------

async fn roster_versions_count_changes(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    s.create_account(&t.host, "v", &creds(1)).await.unwrap();
    assert_eq!(s.roster_get(&t.host, "u").await.unwrap(), (0, vec![]));

    assert_eq!(s.roster_set(&t.host, "u", &item("a@x")).await.unwrap(), 1);
    assert_eq!(s.roster_set(&t.host, "u", &item("b@x")).await.unwrap(), 2);
    assert_eq!(s.roster_set(&t.host, "u", &item("a@x")).await.unwrap(), 3);
    assert_eq!(s.roster_remove(&t.host, "u", "a@x").await.unwrap(), 4);
    // Removing what is not there changes nothing, the version included.
    assert_eq!(s.roster_remove(&t.host, "u", "a@x").await.unwrap(), 4);
    assert_eq!(
        s.roster_get(&t.host, "u").await.unwrap(),
        (4, vec![item("b@x")])
    );

    // Versions are per account.
    assert_eq!(s.roster_set(&t.host, "v", &item("a@x")).await.unwrap(), 1);
    assert_eq!(s.roster_get(&t.host, "u").await.unwrap().0, 4);
}

async fn roster_set_replace_remove(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    let first = RosterItem {
        name: Some("Juliet".into()),
        subscription: Subscription::To,
        groups: vec!["Friends".into()],
        ..item("juliet@example.com")
    };
    s.roster_set(&t.host, "u", &first).await.unwrap();
    s.roster_set(&t.host, "u", &item("nurse@example.com"))
        .await
        .unwrap();
    assert_eq!(
        s.roster_get_item(&t.host, "u", "juliet@example.com")
            .await
            .unwrap(),
        Some(first)
    );

    let second = RosterItem {
        name: None,
        subscription: Subscription::Both,
        groups: vec!["Family".into(), "Verona".into()],
        ..item("juliet@example.com")
    };
    s.roster_set(&t.host, "u", &second).await.unwrap();
    let (_, items) = s.roster_get(&t.host, "u").await.unwrap();
    assert_eq!(items, vec![second.clone(), item("nurse@example.com")]);

    s.roster_remove(&t.host, "u", "juliet@example.com")
        .await
        .unwrap();
    assert_eq!(
        s.roster_get_item(&t.host, "u", "juliet@example.com")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.roster_get(&t.host, "u").await.unwrap().1,
        vec![item("nurse@example.com")]
    );
}

async fn roster_groups_round_trip(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    let groups: Vec<Vec<String>> = vec![
        vec![],
        vec!["Zeta".into(), "alpha".into(), "Mittel".into()],
        vec![
            "with \"quotes\", commas, [brackets]".into(),
            "Ünïcødé 群組".into(),
            "".into(),
        ],
    ];
    for (i, g) in groups.iter().enumerate() {
        let it = RosterItem {
            groups: g.clone(),
            ..item(&format!("c{i}@x"))
        };
        s.roster_set(&t.host, "u", &it).await.unwrap();
        assert_eq!(
            s.roster_get_item(&t.host, "u", &it.jid)
                .await
                .unwrap()
                .unwrap()
                .groups,
            *g
        );
    }
    let (_, items) = s.roster_get(&t.host, "u").await.unwrap();
    assert_eq!(
        items.iter().map(|i| i.groups.clone()).collect::<Vec<_>>(),
        groups
    );
}

async fn roster_flags_round_trip(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    let mut expected = Vec::new();
    for sub in [
        Subscription::None,
        Subscription::To,
        Subscription::From,
        Subscription::Both,
    ] {
        for ask in [false, true] {
            for approved in [false, true] {
                let it = RosterItem {
                    subscription: sub,
                    ask,
                    approved,
                    name: Some(format!("{sub:?} {ask} {approved}")),
                    ..item(&format!("{sub:?}-{ask}-{approved}@x"))
                };
                s.roster_set(&t.host, "u", &it).await.unwrap();
                expected.push(it);
            }
        }
    }
    expected.sort_by(|a, b| a.jid.cmp(&b.jid));
    assert_eq!(s.roster_get(&t.host, "u").await.unwrap().1, expected);
}

async fn roster_of_missing_account(t: &Ctx) {
    let s = &t.store;
    assert_eq!(s.roster_get(&t.host, "ghost").await.unwrap(), (0, vec![]));
    assert_eq!(
        s.roster_get_item(&t.host, "ghost", "a@x").await.unwrap(),
        None
    );
    assert_err!(
        s.roster_set(&t.host, "ghost", &item("a@x")).await,
        StoreError::NoSuchAccount
    );
    assert_err!(
        s.roster_remove(&t.host, "ghost", "a@x").await,
        StoreError::NoSuchAccount
    );
}

// --- subscription requests ---------------------------------------------------

async fn sub_requests_put_replace_remove(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    assert!(s.sub_request_list(&t.host, "u").await.unwrap().is_empty());
    let from_b = stanza("<presence from='b@x' type='subscribe'/>", 1);
    let from_a = stanza(
        "<presence from='a@x' type='subscribe'><status>hi</status></presence>",
        2,
    );
    s.sub_request_put(&t.host, "u", "b@x", &from_b)
        .await
        .unwrap();
    s.sub_request_put(&t.host, "u", "a@x", &from_a)
        .await
        .unwrap();
    assert_eq!(
        s.sub_request_list(&t.host, "u").await.unwrap(),
        vec![
            ("a@x".to_owned(), from_a),
            ("b@x".to_owned(), from_b.clone())
        ]
    );

    let newer = stanza(
        "<presence from='a@x' type='subscribe'><status>again</status></presence>",
        9,
    );
    s.sub_request_put(&t.host, "u", "a@x", &newer)
        .await
        .unwrap();
    s.sub_request_remove(&t.host, "u", "b@x").await.unwrap();
    s.sub_request_remove(&t.host, "u", "never@x").await.unwrap();
    assert_eq!(
        s.sub_request_list(&t.host, "u").await.unwrap(),
        vec![("a@x".to_owned(), newer)]
    );

    assert_err!(
        s.sub_request_put(&t.host, "ghost", "a@x", &from_b).await,
        StoreError::NoSuchAccount
    );
    assert!(s
        .sub_request_list(&t.host, "ghost")
        .await
        .unwrap()
        .is_empty());
}

// --- offline messages ----------------------------------------------------------

async fn offline_order_and_take(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    // Stamps out of order: delivery follows storage order, not stamps.
    let msgs = [
        stanza("<message id='1'/>", 30),
        stanza("<message id='2'/>", 10),
        stanza("<message id='3'/>", 20),
    ];
    for m in &msgs {
        s.offline_push(&t.host, "u", m, 100).await.unwrap();
    }
    assert_eq!(s.offline_count(&t.host, "u").await.unwrap(), 3);
    assert_eq!(s.offline_take(&t.host, "u").await.unwrap(), msgs);
    assert_eq!(s.offline_count(&t.host, "u").await.unwrap(), 0);
    assert!(s.offline_take(&t.host, "u").await.unwrap().is_empty());
}

async fn offline_limit(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    s.create_account(&t.host, "v", &creds(1)).await.unwrap();
    for i in 0..3 {
        s.offline_push(&t.host, "u", &stanza(&format!("<message id='{i}'/>"), i), 3)
            .await
            .unwrap();
    }
    assert_err!(
        s.offline_push(&t.host, "u", &stanza("<message id='x'/>", 9), 3)
            .await,
        StoreError::QuotaExceeded
    );
    assert_eq!(s.offline_count(&t.host, "u").await.unwrap(), 3);
    // The limit is per account.
    s.offline_push(&t.host, "v", &stanza("<message/>", 0), 1)
        .await
        .unwrap();
    // Taking frees the space.
    assert_eq!(s.offline_take(&t.host, "u").await.unwrap().len(), 3);
    s.offline_push(&t.host, "u", &stanza("<message id='y'/>", 10), 3)
        .await
        .unwrap();
    assert_err!(
        s.offline_push(&t.host, "v", &stanza("<message/>", 0), 0)
            .await,
        StoreError::QuotaExceeded
    );
}

async fn offline_limit_holds_under_concurrency(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(s);
            let host = t.host.clone();
            tokio::spawn(async move {
                store
                    .offline_push(&host, "u", &stanza(&format!("<m n='{i}'/>"), i), 5)
                    .await
            })
        })
        .collect();
    let (mut stored, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => stored += 1,
            Err(StoreError::QuotaExceeded) => refused += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!((stored, refused), (5, 15));
    assert_eq!(s.offline_count(&t.host, "u").await.unwrap(), 5);
}

async fn offline_of_missing_account(t: &Ctx) {
    let s = &t.store;
    assert_err!(
        s.offline_push(&t.host, "ghost", &stanza("<message/>", 0), 10)
            .await,
        StoreError::NoSuchAccount
    );
    assert_eq!(s.offline_count(&t.host, "ghost").await.unwrap(), 0);
    assert!(s.offline_take(&t.host, "ghost").await.unwrap().is_empty());
}

// --- key-value data ------------------------------------------------------------

async fn kv_set_get_overwrite_list_delete(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    assert_eq!(
        s.kv_get(&t.host, "u", "private", "a:b").await.unwrap(),
        None
    );
    s.kv_set(&t.host, "u", "private", "storage:bookmarks", "<storage/>")
        .await
        .unwrap();
    s.kv_set(&t.host, "u", "private", "a:b", "<a xmlns='b'/>")
        .await
        .unwrap();
    s.kv_set(&t.host, "u", "private", "a:b", "<a xmlns='b'>new</a>")
        .await
        .unwrap();
    assert_eq!(
        s.kv_get(&t.host, "u", "private", "a:b")
            .await
            .unwrap()
            .as_deref(),
        Some("<a xmlns='b'>new</a>")
    );
    assert_eq!(
        s.kv_list(&t.host, "u", "private").await.unwrap(),
        vec![
            ("a:b".to_owned(), "<a xmlns='b'>new</a>".to_owned()),
            ("storage:bookmarks".to_owned(), "<storage/>".to_owned()),
        ]
    );
    s.kv_delete(&t.host, "u", "private", "a:b").await.unwrap();
    s.kv_delete(&t.host, "u", "private", "never").await.unwrap();
    assert_eq!(
        s.kv_get(&t.host, "u", "private", "a:b").await.unwrap(),
        None
    );
    assert_eq!(s.kv_list(&t.host, "u", "private").await.unwrap().len(), 1);
    // An empty value is a value.
    s.kv_set(&t.host, "u", "vcard", "", "").await.unwrap();
    assert_eq!(
        s.kv_get(&t.host, "u", "vcard", "")
            .await
            .unwrap()
            .as_deref(),
        Some("")
    );
}

/// The value under key `k` of every (account, store) pair `kv_isolation` uses.
async fn kv_snapshot(t: &Ctx) -> Vec<Option<String>> {
    let mut values = Vec::new();
    for (user, store) in [
        ("u", "vcard"),
        ("u", "blocklist"),
        ("v", "vcard"),
        ("v", "blocklist"),
    ] {
        values.push(t.store.kv_get(&t.host, user, store, "k").await.unwrap());
    }
    values
}

async fn kv_isolation(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    s.create_account(&t.host, "v", &creds(1)).await.unwrap();
    for (user, store, value) in [
        ("u", "vcard", "u-vcard"),
        ("u", "blocklist", "u-block"),
        ("v", "vcard", "v-vcard"),
    ] {
        s.kv_set(&t.host, user, store, "k", value).await.unwrap();
    }
    let some = |v: &str| Some(v.to_owned());
    assert_eq!(
        kv_snapshot(t).await,
        [some("u-vcard"), some("u-block"), some("v-vcard"), None]
    );

    s.kv_delete(&t.host, "u", "vcard", "k").await.unwrap();
    assert_eq!(
        kv_snapshot(t).await,
        [None, some("u-block"), some("v-vcard"), None]
    );
    assert_eq!(s.kv_list(&t.host, "u", "vcard").await.unwrap(), vec![]);

    assert_err!(
        s.kv_set(&t.host, "ghost", "vcard", "k", "x").await,
        StoreError::NoSuchAccount
    );
}

// --- rooms -----------------------------------------------------------------------

async fn rooms_save_list_delete(t: &Ctx) {
    let s = &t.store;
    let domain = format!("{}.example", unique("muc"));
    let (r1, r2) = (format!("zoo@{domain}"), format!("abc@{domain}"));
    s.room_save(&r1, r#"{"v":1}"#).await.unwrap();
    s.room_save(&r2, r#"{"v":2}"#).await.unwrap();
    // Neither a subdomain nor a domain merely ending the same way matches.
    s.room_save(&format!("x@sub.{domain}"), "{}").await.unwrap();
    s.room_save(&format!("x@other{domain}"), "{}")
        .await
        .unwrap();
    s.room_save(&r1, r#"{"v":3}"#).await.unwrap();
    assert_eq!(
        s.room_list(&domain).await.unwrap(),
        vec![
            (r2.clone(), r#"{"v":2}"#.to_owned()),
            (r1.clone(), r#"{"v":3}"#.to_owned())
        ]
    );
    s.room_delete(&r1).await.unwrap();
    s.room_delete(&r1).await.unwrap();
    assert_eq!(
        s.room_list(&domain).await.unwrap(),
        vec![(r2, r#"{"v":2}"#.to_owned())]
    );
    assert_eq!(
        s.room_list(&format!("sub.{domain}")).await.unwrap().len(),
        1
    );
}

// --- whole-store behaviour -------------------------------------------------------

/// Rows in the account-owned tables whose account is gone.
async fn orphans(t: &Ctx) -> i64 {
    let raw = t.raw().await;
    let mut total = 0;
    for table in [
        "roster_items",
        "subscription_requests",
        "offline_messages",
        "account_data",
    ] {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE account_id NOT IN (SELECT id FROM accounts)"
        ))
        .fetch_one(&raw)
        .await
        .unwrap();
        total += n;
    }
    total
}

async fn delete_account_cascades(t: &Ctx) {
    let s = &t.store;
    for user in ["u", "keep"] {
        s.create_account(&t.host, user, &creds(1)).await.unwrap();
        s.roster_set(&t.host, user, &item("a@x")).await.unwrap();
        s.sub_request_put(&t.host, user, "b@x", &stanza("<presence/>", 0))
            .await
            .unwrap();
        s.offline_push(&t.host, user, &stanza("<message/>", 0), 10)
            .await
            .unwrap();
        s.kv_set(&t.host, user, "vcard", "", "<vCard/>")
            .await
            .unwrap();
    }
    s.delete_account(&t.host, "u").await.unwrap();
    assert_eq!(orphans(t).await, 0);

    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    assert_eq!(s.roster_get(&t.host, "u").await.unwrap(), (0, vec![]));
    assert!(s.sub_request_list(&t.host, "u").await.unwrap().is_empty());
    assert_eq!(s.offline_count(&t.host, "u").await.unwrap(), 0);
    assert_eq!(s.kv_get(&t.host, "u", "vcard", "").await.unwrap(), None);

    // The other account keeps everything.
    assert_eq!(
        s.roster_get(&t.host, "keep").await.unwrap(),
        (1, vec![item("a@x")])
    );
    assert_eq!(s.sub_request_list(&t.host, "keep").await.unwrap().len(), 1);
    assert_eq!(s.offline_count(&t.host, "keep").await.unwrap(), 1);
    assert_eq!(
        s.kv_get(&t.host, "keep", "vcard", "")
            .await
            .unwrap()
            .as_deref(),
        Some("<vCard/>")
    );
}

async fn bad_stored_data_is_corrupt(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    s.offline_push(&t.host, "u", &stanza("<message/>", 0), 10)
        .await
        .unwrap();
    s.roster_set(&t.host, "u", &item("a@x")).await.unwrap();
    let raw = t.raw().await;
    let account = "(SELECT id FROM accounts WHERE host = $1 AND username = 'u')";
    for update in [
        format!("UPDATE offline_messages SET stamp = 'yesterday' WHERE account_id = {account}"),
        format!("UPDATE roster_items SET group_names = 'not json' WHERE account_id = {account}"),
        "UPDATE accounts SET sha1_iterations = -1 WHERE host = $1 AND username = 'u'".to_owned(),
    ] {
        sqlx::query(&update)
            .bind(&t.host)
            .execute(&raw)
            .await
            .unwrap();
    }
    assert_err!(s.offline_take(&t.host, "u").await, StoreError::Corrupt(_));
    // Nothing was lost by the failed take.
    assert_eq!(s.offline_count(&t.host, "u").await.unwrap(), 1);
    assert_err!(s.roster_get(&t.host, "u").await, StoreError::Corrupt(_));
    assert_err!(
        s.roster_get_item(&t.host, "u", "a@x").await,
        StoreError::Corrupt(_)
    );
    assert_err!(
        s.get_credentials(&t.host, "u").await,
        StoreError::Corrupt(_)
    );
}

/// Two stores on one database (as the server and `conclave user add` in
/// another process) write at the same time and see each other's data.
async fn two_stores_share_the_database(t: &Ctx) {
    let other = conclave_store::open(&t.location).await.unwrap();
    let stores = [Arc::clone(&t.store), other];
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            let host = t.host.clone();
            tokio::spawn(async move {
                let user = format!("user{i:02}");
                store.create_account(&host, &user, &creds(1)).await?;
                store.roster_set(&host, &user, &item("a@x")).await?;
                store.kv_set(&host, &user, "vcard", "", "v").await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let expected: Vec<String> = (0..40).map(|i| format!("user{i:02}")).collect();
    for store in &stores {
        assert_eq!(store.list_accounts(&t.host).await.unwrap(), expected);
    }
}

async fn data_survives_reopening(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(4)).await.unwrap();
    s.roster_set(&t.host, "u", &item("a@x")).await.unwrap();
    s.offline_push(&t.host, "u", &stanza("<message/>", 0), 10)
        .await
        .unwrap();
    let reopened = conclave_store::open(&t.location).await.unwrap();
    assert_eq!(
        reopened.get_credentials(&t.host, "u").await.unwrap(),
        Some(creds(4))
    );
    assert_eq!(
        reopened.roster_get(&t.host, "u").await.unwrap(),
        (1, vec![item("a@x")])
    );
    assert_eq!(reopened.offline_count(&t.host, "u").await.unwrap(), 1);
}

/// Makes the database refuse some writes from inside a transaction, the
/// way a full disk does: on SQLite the failing statement rolls the whole
/// transaction back by itself (`RAISE(ROLLBACK)`, as SQLite may do on
/// `SQLITE_FULL`), on PostgreSQL the `COMMIT` fails (a deferred trigger).
/// Rows marked `fail-*` trip them; no other test writes such rows.
async fn install_failing_writes(t: &Ctx) {
    let raw = t.raw().await;
    // (trigger, event, table, condition)
    let triggers = [
        (
            "fail_offline_insert",
            "INSERT",
            "offline_messages",
            "NEW.xml = '<fail-insert/>'",
        ),
        (
            "fail_offline_delete",
            "DELETE",
            "offline_messages",
            "OLD.xml = '<fail-delete/>'",
        ),
        (
            "fail_roster_insert",
            "INSERT",
            "roster_items",
            "NEW.jid = 'fail-set@x'",
        ),
        (
            "fail_roster_delete",
            "DELETE",
            "roster_items",
            "OLD.jid = 'fail-remove@x'",
        ),
    ];
    if t.location.starts_with("postgres") {
        sqlx::raw_sql(
            "CREATE OR REPLACE FUNCTION conclave_test_fail() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'injected failure at commit'; END $$",
        )
        .execute(&raw)
        .await
        .unwrap();
        for (name, event, table, condition) in triggers {
            sqlx::raw_sql(&format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{name}') THEN \
                 CREATE CONSTRAINT TRIGGER {name} AFTER {event} ON {table} \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN ({condition}) \
                 EXECUTE FUNCTION conclave_test_fail(); END IF; END $$"
            ))
            .execute(&raw)
            .await
            .unwrap();
        }
    } else {
        for (name, event, table, condition) in triggers {
            sqlx::raw_sql(&format!(
                "CREATE TRIGGER {name} BEFORE {event} ON {table} WHEN {condition} \
                 BEGIN SELECT RAISE(ROLLBACK, 'injected failure'); END"
            ))
            .execute(&raw)
            .await
            .unwrap();
        }
    }
}

/// A transaction that failed (in a statement or at `COMMIT`) leaves no
/// pooled connection behind in a transaction: every write after it works.
async fn failed_transactions_leave_the_store_usable(t: &Ctx) {
    let s = &t.store;
    s.create_account(&t.host, "u", &creds(1)).await.unwrap();
    s.roster_set(&t.host, "u", &item("fail-remove@x"))
        .await
        .unwrap();
    install_failing_writes(t).await;
    sqlx::query(
        "INSERT INTO offline_messages (account_id, xml, stamp) SELECT id, '<fail-delete/>', $2 \
         FROM accounts WHERE host = $1 AND username = 'u'",
    )
    .bind(&t.host)
    .bind("2023-11-14T22:13:20.123456789Z")
    .execute(&t.raw().await)
    .await
    .unwrap();

    // More failures than either pool has connections.
    for _ in 0..12 {
        assert_err!(
            s.offline_push(&t.host, "u", &stanza("<fail-insert/>", 0), 100)
                .await,
            StoreError::Database(_)
        );
        assert_err!(s.offline_take(&t.host, "u").await, StoreError::Database(_));
        assert_err!(
            s.roster_set(&t.host, "u", &item("fail-set@x")).await,
            StoreError::Database(_)
        );
        assert_err!(
            s.roster_remove(&t.host, "u", "fail-remove@x").await,
            StoreError::Database(_)
        );
    }
    // Nothing of the failed transactions was kept.
    assert_eq!(s.offline_count(&t.host, "u").await.unwrap(), 1);
    assert_eq!(
        s.roster_get(&t.host, "u").await.unwrap(),
        (1, vec![item("fail-remove@x")])
    );

    // Every write works again, on whichever connection it gets.
    for i in 0..24 {
        let version = s
            .roster_set(&t.host, "u", &item(&format!("c{i:02}@x")))
            .await
            .unwrap();
        assert_eq!(version, 2 + i);
        s.offline_push(&t.host, "u", &stanza("<message/>", 0), 100)
            .await
            .unwrap();
        s.kv_set(&t.host, "u", "vcard", "", "<vCard/>")
            .await
            .unwrap();
    }
    assert_eq!(
        s.roster_remove(&t.host, "u", "c00@x").await.unwrap(),
        2 + 24
    );
    assert_eq!(s.offline_count(&t.host, "u").await.unwrap(), 25);
}

/// One test module per backend, each running every behaviour on a fresh
/// [`Ctx`] (`$ctx` is `None` when the backend is not available).
macro_rules! backend {
    ($backend:ident, $ctx:expr, $($name:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(ctx) = $ctx {
                        super::$name(&ctx).await;
                    }
                }
            )*
        }
    };
}

/// Runs every behaviour against each backend.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        backend!(sqlite, Some(super::Ctx::sqlite().await), $($name),*);
        backend!(postgres, super::Ctx::postgres().await, $($name),*);
    };
}

suite!(
    account_create_get_duplicate,
    account_set_credentials,
    account_delete,
    account_list_sorted_per_host,
    roster_versions_count_changes,
    roster_set_replace_remove,
    roster_groups_round_trip,
    roster_flags_round_trip,
    roster_of_missing_account,
    sub_requests_put_replace_remove,
    offline_order_and_take,
    offline_limit,
    offline_limit_holds_under_concurrency,
    offline_of_missing_account,
    kv_set_get_overwrite_list_delete,
    kv_isolation,
    rooms_save_list_delete,
    delete_account_cascades,
    bad_stored_data_is_corrupt,
    two_stores_share_the_database,
    data_survives_reopening,
    failed_transactions_leave_the_store_usable,
);

// --- locations (SQLite only) -------------------------------------------------------

#[tokio::test]
async fn sqlite_locations_create_missing_directories() {
    let dir = TempDir::new();
    let plain = dir.0.join("a/b/plain.db");
    let prefixed = dir.0.join("c/prefixed.db");
    for location in [
        plain.display().to_string(),
        format!("sqlite:{}", prefixed.display()),
    ] {
        let store = conclave_store::open(&location).await.unwrap();
        store.create_account("h", "u", &creds(1)).await.unwrap();
    }
    assert!(plain.is_file());
    assert!(prefixed.is_file());
    // The same file opened through another spelling holds the same data.
    let again = conclave_store::open(&format!("sqlite://{}", plain.display()))
        .await
        .unwrap();
    assert_eq!(again.list_accounts("h").await.unwrap(), ["u"]);
    // WAL is a property of the file, set when the store opened it.
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&format!("sqlite://{}", plain.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn empty_location_is_refused() {
    for location in ["", "sqlite:", "sqlite://"] {
        let result = conclave_store::open(location).await;
        assert!(
            matches!(result, Err(StoreError::Database(_))),
            "{location:?}"
        );
    }
}

// --- a second process on the same SQLite file ----------------------------------------

const CHILD_DB: &str = "CONCLAVE_STORE_CHILD_DB";

/// The other process of `sqlite_second_process_writes_concurrently`, which
/// starts this test binary again to run only this.
#[tokio::test]
#[ignore = "run by sqlite_second_process_writes_concurrently"]
async fn sqlite_child_process_writer() {
    let location = std::env::var(CHILD_DB).expect("started without the database location");
    let store = conclave_store::open(&location).await.unwrap();
    for i in 0..50 {
        let user = format!("child{i:02}");
        store.create_account("h", &user, &creds(1)).await.unwrap();
        store
            .offline_push("h", &user, &stanza("<message/>", i), 10)
            .await
            .unwrap();
    }
}

/// As `conclave user add` beside the server: two processes write to one
/// SQLite file at the same time, and neither fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_second_process_writes_concurrently() {
    let dir = TempDir::new();
    let location = format!("sqlite://{}", dir.0.join("shared.db").display());
    let store = conclave_store::open(&location).await.unwrap();
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "sqlite_child_process_writer"])
        .env(CHILD_DB, &location)
        .output();
    let parent = async {
        for i in 0..50 {
            let user = format!("parent{i:02}");
            store.create_account("h", &user, &creds(1)).await.unwrap();
            store
                .offline_push("h", &user, &stanza("<message/>", i), 10)
                .await
                .unwrap();
        }
    };
    let (child, ()) = tokio::join!(child, parent);
    let child = child.unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "child failed: {stdout}");
    assert!(stdout.contains("1 passed"), "child ran no test: {stdout}");
    assert_eq!(store.list_accounts("h").await.unwrap().len(), 100);
    assert_eq!(store.offline_count("h", "child49").await.unwrap(), 1);
}
