//! TLS server configuration: configured or generated self-signed
//! certificates per virtual host, chosen by SNI.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The certificate settings of one virtual host.
#[derive(Clone, Debug)]
pub struct HostTlsSettings {
    pub host: String,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Builds the rustls server configuration for these hosts.
pub fn server_config(
    _hosts: &[HostTlsSettings],
    _data_dir: &Path,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    anyhow::bail!("TLS not available yet")
}
