//! Account credentials (SCRAM salted passwords) and the failed-authentication
//! back-off.

use conclave_store::{Credentials, ScramKeys, Store, StoreError};

/// Derives SCRAM-SHA-1 and SCRAM-SHA-256 credentials from a password.
pub fn derive_credentials(_password: &str) -> Credentials {
    Credentials {
        sha1: ScramKeys {
            salt: Vec::new(),
            iterations: 4096,
            salted_password: Vec::new(),
        },
        sha256: ScramKeys {
            salt: Vec::new(),
            iterations: 4096,
            salted_password: Vec::new(),
        },
    }
}

/// Checks a password against the stored credentials.
pub async fn verify_password(
    _store: &dyn Store,
    _host: &str,
    _user: &str,
    _password: &str,
) -> Result<bool, StoreError> {
    Ok(false)
}

/// Per-IP failed-authentication counting with a growing delay.
#[derive(Clone, Default)]
pub struct AuthThrottle {}
