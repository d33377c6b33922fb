//! Account credentials and password checks: passwords are stored only as
//! SCRAM salted passwords (SHA-1 and SHA-256), never in clear. Also the
//! decoy credentials shown for accounts that do not exist, and the
//! failed-authentication back-off shared by all connections.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use conclave_store::{Credentials, ScramKeys, Store, StoreError};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sasl::secret::{Pbkdf2Sha1, Pbkdf2Sha256};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// PBKDF2 iterations for newly derived credentials.
pub const SCRAM_ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;

/// Derives SCRAM-SHA-1 and SCRAM-SHA-256 credentials from a password, with
/// a random salt per hash function.
pub fn derive_credentials(password: &str) -> Credentials {
    let mut rng = rand::thread_rng();
    let mut salt1 = vec![0u8; SALT_LEN];
    let mut salt256 = vec![0u8; SALT_LEN];
    rng.fill_bytes(&mut salt1);
    rng.fill_bytes(&mut salt256);
    Credentials {
        sha1: ScramKeys {
            salted_password: salted_sha1(password, &salt1, SCRAM_ITERATIONS).unwrap_or_default(),
            salt: salt1,
            iterations: SCRAM_ITERATIONS,
        },
        sha256: ScramKeys {
            salted_password: salted_sha256(password, &salt256, SCRAM_ITERATIONS)
                .unwrap_or_default(),
            salt: salt256,
            iterations: SCRAM_ITERATIONS,
        },
    }
}

fn salted_sha1(password: &str, salt: &[u8], iterations: u32) -> Option<Vec<u8>> {
    Pbkdf2Sha1::derive(password, salt, iterations)
        .ok()
        .map(|s| s.digest)
}

fn salted_sha256(password: &str, salt: &[u8], iterations: u32) -> Option<Vec<u8>> {
    Pbkdf2Sha256::derive(password, salt, iterations)
        .ok()
        .map(|s| s.digest)
}

/// Checks a clear-text password against stored credentials (SHA-256 keys).
pub fn check_password(creds: &Credentials, password: &str) -> bool {
    let keys = &creds.sha256;
    if keys.salted_password.is_empty() {
        return false;
    }
    match salted_sha256(password, &keys.salt, keys.iterations) {
        Some(derived) => derived.ct_eq(&keys.salted_password).into(),
        None => false,
    }
}

/// The account name for a localpart: the nodeprep'd localpart, or `None`
/// when `user@host` is not a valid bare JID.
pub fn normalize_username(user: &str, host: &str) -> Option<String> {
    let jid = jid::BareJid::new(&format!("{user}@{host}")).ok()?;
    jid.node().map(|n| n.as_str().to_owned())
}

/// Checks a password for `user@host` against the store. `Ok(false)` for an
/// unknown account or an invalid username.
pub async fn verify_password(
    store: &dyn Store,
    host: &str,
    user: &str,
    password: &str,
) -> Result<bool, StoreError> {
    let Some(user) = normalize_username(user, host) else {
        return Ok(false);
    };
    match store.get_credentials(host, &user).await? {
        Some(creds) => Ok(check_password(&creds, password)),
        None => Ok(false),
    }
}

/// File of the data directory holding the secret decoy credentials are
/// derived from.
pub const DECOY_SECRET_FILE: &str = "auth-secret";
/// A key of HMAC-SHA-256's block size.
const DECOY_SECRET_LEN: usize = 64;

/// Credentials for accounts that do not exist, so that a SCRAM exchange
/// for one looks like one for a real account until the proof fails: a
/// 16-byte salt per hash function, stable for a given account name (asking
/// twice gives the same salt, as for a real account) and unpredictable
/// without the server's secret, and the iteration count every account of
/// this server has ([`SCRAM_ITERATIONS`]). Each value is an HMAC-SHA-256 of
/// the host and account name under the secret, with a label per field.
#[derive(Clone)]
pub struct DecoyCredentials {
    secret: Arc<[u8; DECOY_SECRET_LEN]>,
}

impl DecoyCredentials {
    /// Decoys derived from `secret`.
    pub fn from_secret(secret: [u8; DECOY_SECRET_LEN]) -> Self {
        DecoyCredentials {
            secret: Arc::new(secret),
        }
    }

    /// Decoys derived from the secret in `data_dir`/[`DECOY_SECRET_FILE`],
    /// created at the first start from the system's random generator,
    /// readable by the owner only.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(DECOY_SECRET_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = [0u8; DECOY_SECRET_LEN];
                rand::rngs::OsRng.fill_bytes(&mut secret);
                match create_private(&path, &secret) {
                    Ok(()) => return Ok(Self::from_secret(secret)),
                    // Created meanwhile by another process: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot create {}", path.display()))
                    }
                }
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let secret: [u8; DECOY_SECRET_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!(
                "{} holds {} bytes instead of {DECOY_SECRET_LEN}; remove it to have a new one made",
                path.display(),
                b.len()
            )
        })?;
        Ok(Self::from_secret(secret))
    }

    /// The decoy credentials of `user` (a nodeprep'd account name) on `host`.
    pub fn for_account(&self, host: &str, user: &str) -> Credentials {
        let field = |label: &str, len: usize| {
            let mut out = self.derive(label, host, user);
            out.truncate(len);
            out
        };
        Credentials {
            sha1: ScramKeys {
                salt: field("scram-sha-1 salt", SALT_LEN),
                iterations: SCRAM_ITERATIONS,
                salted_password: field("scram-sha-1 salted password", 20),
            },
            sha256: ScramKeys {
                salt: field("scram-sha-256 salt", SALT_LEN),
                iterations: SCRAM_ITERATIONS,
                salted_password: field("scram-sha-256 salted password", 32),
            },
        }
    }

    /// HMAC-SHA-256 under the secret of `label`, `host` and `user`, each
    /// followed by a zero byte (none of them contains one).
    fn derive(&self, label: &str, host: &str, user: &str) -> Vec<u8> {
        let key: &[u8; DECOY_SECRET_LEN] = &self.secret;
        let mut mac = <Hmac<Sha256> as KeyInit>::new(key.into());
        for part in [label, host, user] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac.finalize().into_bytes().to_vec()
    }
}

/// Writes a new file that only its owner may read (mode 0600 on Unix);
/// fails if it exists.
fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// First delay after a failed authentication.
pub const THROTTLE_BASE: Duration = Duration::from_millis(250);
/// Longest delay.
pub const THROTTLE_MAX: Duration = Duration::from_secs(8);
/// Failures are forgotten after this long without a new one.
const THROTTLE_FORGET: Duration = Duration::from_secs(600);
/// Bound on the number of addresses remembered.
const THROTTLE_MAX_ENTRIES: usize = 65_536;

struct FailureRecord {
    failures: u32,
    last: Instant,
}

/// Failures per key (an address or an account), bounded in size.
struct Failures<K> {
    records: HashMap<K, FailureRecord>,
}

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Failures {
            records: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash> Failures<K> {
    fn delay(&self, key: &K) -> Duration {
        match self.records.get(key) {
            Some(r) if r.failures > 0 && r.last.elapsed() < THROTTLE_FORGET => {
                let shift = (r.failures - 1).min(16);
                THROTTLE_BASE
                    .saturating_mul(1u32 << shift)
                    .min(THROTTLE_MAX)
            }
            _ => Duration::ZERO,
        }
    }

    fn record(&mut self, key: K) {
        if self.records.len() >= THROTTLE_MAX_ENTRIES {
            self.records
                .retain(|_, r| r.last.elapsed() < THROTTLE_FORGET);
        }
        if self.records.len() >= THROTTLE_MAX_ENTRIES && !self.records.contains_key(&key) {
            return;
        }
        let now = Instant::now();
        let r = self.records.entry(key).or_insert(FailureRecord {
            failures: 0,
            last: now,
        });
        if r.last.elapsed() >= THROTTLE_FORGET {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last = now;
    }
}

#[derive(Default)]
struct Records {
    by_ip: Failures<IpAddr>,
    /// Keyed by a hash of the bare JID (`user@host`), under keys random
    /// to this process: an entry takes a few bytes whatever the length of
    /// the name tried.
    by_account: Failures<u64>,
    hasher: RandomState,
}

/// Failed-authentication back-off, counted per peer IP and per target
/// account: after each failure the next failed attempt from that address,
/// or at that account from any address, waits longer (doubling from
/// [`THROTTLE_BASE`] up to [`THROTTLE_MAX`]); an attempt waits for the
/// longer of the two. A success resets only the back-off of the account
/// that logged in: one account's login must not speed up guesses at
/// another, from the same address or any other. Only the connection that
/// is authenticating waits.
#[derive(Clone, Default)]
pub struct AuthThrottle {
    inner: Arc<Mutex<Records>>,
}

impl AuthThrottle {
    /// The back-off of `ip` alone.
    pub fn delay_for(&self, ip: IpAddr) -> Duration {
        self.inner
            .lock()
            .map(|r| r.by_ip.delay(&ip))
            .unwrap_or(Duration::ZERO)
    }

    /// The back-off of `account` (a bare JID) alone, from any address.
    pub fn delay_for_account(&self, account: &str) -> Duration {
        self.inner
            .lock()
            .map(|r| r.by_account.delay(&r.hasher.hash_one(account)))
            .unwrap_or(Duration::ZERO)
    }

    /// The delay before answering a failed authentication from `ip` at
    /// `account` (`None` when the name given is not a valid account name).
    pub fn delay(&self, ip: IpAddr, account: Option<&str>) -> Duration {
        let by_account = account.map_or(Duration::ZERO, |a| self.delay_for_account(a));
        self.delay_for(ip).max(by_account)
    }

    /// Records a failed authentication from `ip` at `account`.
    pub fn record_failure(&self, ip: IpAddr, account: Option<&str>) {
        let Ok(mut records) = self.inner.lock() else {
            return;
        };
        records.by_ip.record(ip);
        if let Some(account) = account {
            let key = records.hasher.hash_one(account);
            records.by_account.record(key);
        }
    }

    /// Records a successful authentication of `account`: its back-off is
    /// reset. The address's is not, as its failures may have been guesses
    /// at other accounts.
    pub fn record_success(&self, account: &str) {
        if let Ok(mut records) = self.inner.lock() {
            let key = records.hasher.hash_one(account);
            records.by_account.records.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_verify_and_salts_differ() {
        let a = derive_credentials("secret");
        let b = derive_credentials("secret");
        assert_eq!(a.sha1.salt.len(), 16);
        assert_eq!(a.sha256.iterations, SCRAM_ITERATIONS);
        assert_eq!(a.sha1.salted_password.len(), 20);
        assert_eq!(a.sha256.salted_password.len(), 32);
        assert_ne!(a.sha256.salt, b.sha256.salt);
        assert_ne!(a.sha256.salted_password, b.sha256.salted_password);
        assert!(check_password(&a, "secret"));
        assert!(!check_password(&a, "Secret"));
        assert!(!check_password(&a, ""));
    }

    #[test]
    fn usernames_are_nodeprepped() {
        assert_eq!(
            normalize_username("Alice", "localhost").as_deref(),
            Some("alice")
        );
        assert_eq!(normalize_username("bad@user", "localhost"), None);
        assert_eq!(normalize_username("", "localhost"), None);
    }

    #[test]
    fn throttle_doubles_caps_and_resets() {
        let t = AuthThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let alice = Some("alice@localhost");
        assert_eq!(t.delay_for(ip), Duration::ZERO);
        t.record_failure(ip, alice);
        assert_eq!(t.delay_for(ip), Duration::from_millis(250));
        t.record_failure(ip, alice);
        assert_eq!(t.delay_for(ip), Duration::from_millis(500));
        for _ in 0..20 {
            t.record_failure(ip, alice);
        }
        assert_eq!(t.delay_for(ip), THROTTLE_MAX);
        assert_eq!(t.delay_for(other), Duration::ZERO);
        // The account's back-off follows it to another address.
        assert_eq!(t.delay(other, alice), THROTTLE_MAX);
        assert_eq!(t.delay(other, Some("bob@localhost")), Duration::ZERO);
        t.clone().record_success("alice@localhost");
        assert_eq!(t.delay_for_account("alice@localhost"), Duration::ZERO);
        assert_eq!(t.delay(other, alice), Duration::ZERO);
    }

    #[test]
    fn a_login_does_not_reset_the_back_off_for_other_accounts() {
        let t = AuthThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let bob = Some("bob@localhost");
        for _ in 0..3 {
            t.record_failure(ip, bob);
        }
        // A failure with a name that is no account counts for the address.
        t.record_failure(ip, None);
        assert_eq!(t.delay(ip, None), Duration::from_secs(2));
        // The attacker's own account logs in from the same address.
        t.record_success("mallory@localhost");
        assert_eq!(t.delay(ip, bob), Duration::from_secs(2));
        assert_eq!(t.delay(ip, Some("carol@localhost")), Duration::from_secs(2));
        assert_eq!(t.delay(other, bob), Duration::from_secs(1));
        assert_eq!(t.delay(other, Some("carol@localhost")), Duration::ZERO);
    }

    #[test]
    fn decoys_are_stable_per_account_and_shaped_like_real_credentials() {
        let decoys = DecoyCredentials::from_secret([7; DECOY_SECRET_LEN]);
        let a = decoys.for_account("localhost", "nobody");
        let b = decoys.for_account("localhost", "nobody");
        let real = derive_credentials("secret");
        for (d, r) in [(&a.sha1, &real.sha1), (&a.sha256, &real.sha256)] {
            assert_eq!(d.salt.len(), r.salt.len());
            assert_eq!(d.iterations, r.iterations);
            assert_eq!(d.salted_password.len(), r.salted_password.len());
        }
        assert_eq!(a.sha1.salt, b.sha1.salt);
        assert_eq!(a.sha256.salt, b.sha256.salt);
        assert_ne!(a.sha1.salt, a.sha256.salt);
        let others = [
            decoys.for_account("localhost", "nobody2"),
            decoys.for_account("example.org", "nobody"),
            DecoyCredentials::from_secret([8; DECOY_SECRET_LEN]).for_account("localhost", "nobody"),
        ];
        for o in others {
            assert_ne!(o.sha256.salt, a.sha256.salt);
            assert_ne!(o.sha1.salt, a.sha1.salt);
        }
        assert!(!check_password(&a, "secret"));
    }

    #[test]
    fn decoy_secret_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("conclave-decoy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let first = DecoyCredentials::load_or_create(&dir).unwrap();
        let path = dir.join(DECOY_SECRET_FILE);
        assert_eq!(std::fs::read(&path).unwrap().len(), DECOY_SECRET_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A restart reads the same secret: the same decoys.
        let again = DecoyCredentials::load_or_create(&dir).unwrap();
        assert_eq!(
            first.for_account("localhost", "nobody").sha256.salt,
            again.for_account("localhost", "nobody").sha256.salt
        );
        // A damaged file is refused, not replaced.
        std::fs::write(&path, b"short").unwrap();
        let err = DecoyCredentials::load_or_create(&dir).err().unwrap();
        assert!(err.to_string().contains("5 bytes"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
