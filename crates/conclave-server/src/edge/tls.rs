//! TLS server configuration (rustls, ring provider): the configured
//! certificate and key of each virtual host, or a self-signed certificate
//! generated on first start into the data directory, chosen by SNI.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate settings of one virtual host.
#[derive(Clone, Debug)]
pub struct HostTlsSettings {
    pub host: String,
    /// PEM certificate chain; `None` (with `key` `None`) = self-signed.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// Chooses the certificate of the host named in SNI, else the first host's.
#[derive(Debug)]
struct SniResolver {
    by_host: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|name| self.by_host.get(&name.to_ascii_lowercase()))
            .unwrap_or(&self.default);
        Some(Arc::clone(chosen))
    }
}

/// Loads the configured certificate/key per host, or generates a
/// self-signed one per host into `data_dir/certs/<host>.{crt,key}` (reused
/// on later starts) and logs a warning. SNI-aware.
pub fn server_config(
    hosts: &[HostTlsSettings],
    data_dir: &Path,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut by_host = HashMap::new();
    let mut default = None;
    for settings in hosts {
        let (cert_path, key_path) = match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (None, None) => self_signed_paths(&settings.host, data_dir)?,
            _ => bail!(
                "host {}: set both the TLS certificate and the key, or neither",
                settings.host
            ),
        };
        let key = load_certified_key(&provider, &cert_path, &key_path)
            .with_context(|| format!("TLS certificate of host {}", settings.host))?;
        let key = Arc::new(key);
        if default.is_none() {
            default = Some(Arc::clone(&key));
        }
        by_host.insert(settings.host.to_ascii_lowercase(), key);
    }
    let default =
        default.ok_or_else(|| anyhow!("no virtual host to make a TLS certificate for"))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { by_host, default }));
    Ok(Arc::new(config))
}

/// The self-signed certificate files of `host`, generated if absent.
fn self_signed_paths(host: &str, data_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    if host.is_empty() || host.contains(['/', '\\']) || host.starts_with('.') {
        bail!("invalid host name for a certificate file: {host:?}");
    }
    let dir = data_dir.join("certs");
    let cert_path = dir.join(format!("{host}.crt"));
    let key_path = dir.join(format!("{host}.key"));
    if cert_path.exists() && key_path.exists() {
        tracing::warn!(
            "host {host}: using the self-signed certificate {}; configure a real certificate for clients that check them",
            cert_path.display()
        );
        return Ok((cert_path, key_path));
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let generated = rcgen::generate_simple_self_signed(vec![host.to_owned()])
        .with_context(|| format!("generating a certificate for {host}"))?;
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
    fs::write(&cert_path, generated.cert.pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::warn!(
        "host {host}: no TLS certificate configured; generated a self-signed one in {}",
        cert_path.display()
    );
    Ok((cert_path, key_path))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn load_certified_key(
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<CertifiedKey> {
    let cert_pem =
        fs::read(cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert_path.display()))?;
    if chain.is_empty() {
        bail!("{} contains no PEM certificate", cert_path.display());
    }
    let key_pem = fs::read(key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .with_context(|| format!("parsing {}", key_path.display()))?
        .ok_or_else(|| anyhow!("{} contains no PEM private key", key_path.display()))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| anyhow!("unusable private key {}: {e}", key_path.display()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        anyhow!(
            "{} does not match {}: {e}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("conclave-tls-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn generates_then_reuses_self_signed_certificates() {
        let dir = tempdir("gen");
        let hosts = vec![
            HostTlsSettings {
                host: "localhost".into(),
                cert: None,
                key: None,
            },
            HostTlsSettings {
                host: "example.org".into(),
                cert: None,
                key: None,
            },
        ];
        server_config(&hosts, &dir).unwrap();
        let crt = dir.join("certs/localhost.crt");
        let key = dir.join("certs/localhost.key");
        assert!(dir.join("certs/example.org.crt").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let first = fs::read(&crt).unwrap();
        server_config(&hosts, &dir).unwrap();
        assert_eq!(fs::read(&crt).unwrap(), first, "certificate regenerated");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_bad_configuration() {
        let dir = tempdir("bad");
        let only_cert = [HostTlsSettings {
            host: "localhost".into(),
            cert: Some(dir.join("x.crt")),
            key: None,
        }];
        assert!(server_config(&only_cert, &dir).is_err());
        let missing = [HostTlsSettings {
            host: "localhost".into(),
            cert: Some(dir.join("x.crt")),
            key: Some(dir.join("x.key")),
        }];
        let err = server_config(&missing, &dir).unwrap_err();
        assert!(format!("{err:#}").contains("x.crt"), "{err:#}");
        // A key that does not belong to the certificate.
        let a = rcgen::generate_simple_self_signed(vec!["a".to_owned()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".to_owned()]).unwrap();
        fs::write(dir.join("a.crt"), a.cert.pem()).unwrap();
        fs::write(dir.join("b.key"), b.signing_key.serialize_pem()).unwrap();
        let mismatched = [HostTlsSettings {
            host: "localhost".into(),
            cert: Some(dir.join("a.crt")),
            key: Some(dir.join("b.key")),
        }];
        assert!(server_config(&mismatched, &dir).is_err());
        assert!(server_config(&[], &dir).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
