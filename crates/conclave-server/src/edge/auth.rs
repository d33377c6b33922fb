//! Account credentials and password checks: passwords are stored only as
//! SCRAM salted passwords (SHA-1 and SHA-256), never in clear. Also the
//! failed-authentication back-off shared by all connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conclave_store::{Credentials, ScramKeys, Store, StoreError};
use rand::RngCore;
use sasl::secret::{Pbkdf2Sha1, Pbkdf2Sha256};
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

/// Failed-authentication back-off, per peer IP: after each failure the
/// next attempt from that address waits longer (doubling from
/// [`THROTTLE_BASE`] up to [`THROTTLE_MAX`]); a success resets it. Only the
/// connection that is authenticating waits.
#[derive(Clone, Default)]
pub struct AuthThrottle {
    inner: Arc<Mutex<HashMap<IpAddr, FailureRecord>>>,
}

impl AuthThrottle {
    /// The delay to apply before answering an authentication from `ip`.
    pub fn delay_for(&self, ip: IpAddr) -> Duration {
        let Ok(map) = self.inner.lock() else {
            return Duration::ZERO;
        };
        match map.get(&ip) {
            Some(r) if r.failures > 0 && r.last.elapsed() < THROTTLE_FORGET => {
                let shift = (r.failures - 1).min(16);
                THROTTLE_BASE
                    .saturating_mul(1u32 << shift)
                    .min(THROTTLE_MAX)
            }
            _ => Duration::ZERO,
        }
    }

    /// Records a failed authentication from `ip`.
    pub fn record_failure(&self, ip: IpAddr) {
        let Ok(mut map) = self.inner.lock() else {
            return;
        };
        if map.len() >= THROTTLE_MAX_ENTRIES {
            map.retain(|_, r| r.last.elapsed() < THROTTLE_FORGET);
        }
        if map.len() >= THROTTLE_MAX_ENTRIES && !map.contains_key(&ip) {
            return;
        }
        let now = Instant::now();
        let r = map.entry(ip).or_insert(FailureRecord {
            failures: 0,
            last: now,
        });
        if r.last.elapsed() >= THROTTLE_FORGET {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last = now;
    }

    /// Records a successful authentication from `ip`: the back-off is reset.
    pub fn record_success(&self, ip: IpAddr) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(&ip);
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
        assert_eq!(t.delay_for(ip), Duration::ZERO);
        t.record_failure(ip);
        assert_eq!(t.delay_for(ip), Duration::from_millis(250));
        t.record_failure(ip);
        assert_eq!(t.delay_for(ip), Duration::from_millis(500));
        for _ in 0..20 {
            t.record_failure(ip);
        }
        assert_eq!(t.delay_for(ip), THROTTLE_MAX);
        assert_eq!(t.delay_for(other), Duration::ZERO);
        t.clone().record_success(ip);
        assert_eq!(t.delay_for(ip), Duration::ZERO);
    }
}
