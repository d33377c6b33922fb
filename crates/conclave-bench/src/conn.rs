//! The server under test and how simulated clients log in to it: account
//! names, TLS and SASL choice, and logging in many clients with bounded
//! concurrency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::{Args, ValueEnum};
use conclave_scansion::client::{Client, ClientOptions, SaslMechanism, TlsMode};
use indicatif::ProgressBar;
use jid::Jid;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How clients secure the stream and authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsChoice {
    /// STARTTLS, then SCRAM (SHA-256 preferred, SHA-1 accepted).
    Starttls,
    /// No TLS, SASL PLAIN (acceptable on loopback only).
    Plain,
}

impl TlsChoice {
    /// A short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            TlsChoice::Starttls => "SCRAM over STARTTLS",
            TlsChoice::Plain => "PLAIN without TLS",
        }
    }
}

/// Where the server is and which accounts to use.
#[derive(Debug, Clone, Args, Serialize)]
pub struct Target {
    /// Server address (the benchmark only targets loopback).
    #[arg(long, default_value = "127.0.0.1", global = true)]
    pub host: String,
    /// Client-to-server port.
    #[arg(long, default_value_t = 5222, global = true)]
    pub port: u16,
    /// The virtual host of the accounts.
    #[arg(long, default_value = "localhost", global = true)]
    pub domain: String,
    /// The group chat service.
    #[arg(long, default_value = "conference.localhost", global = true)]
    pub muc_domain: String,
    /// Password of every benchmark account.
    #[arg(long, default_value = "bench-secret", global = true)]
    #[serde(skip)]
    pub password: String,
    /// Accounts are <prefix>1, <prefix>2, ...
    #[arg(long, default_value = "bench", global = true)]
    pub user_prefix: String,
    /// STARTTLS with SCRAM, or plaintext PLAIN.
    #[arg(long, value_enum, default_value_t = TlsChoice::Plain, global = true)]
    pub tls: TlsChoice,
    /// Logins in flight at once while setting up a scenario.
    #[arg(long, default_value_t = 64, global = true)]
    pub login_concurrency: usize,
    /// Time limit for one login, in seconds.
    #[arg(long, default_value_t = 30, global = true)]
    pub login_timeout: u64,
}

impl Target {
    /// The bare JID of account number `n` (from 1).
    pub fn account(&self, n: usize) -> Result<Jid> {
        let s = format!("{}{}@{}", self.user_prefix, n, self.domain);
        s.parse::<Jid>()
            .with_context(|| format!("account name {s:?} is not a valid JID"))
    }

    /// Connection options for account number `n`.
    pub fn options(&self, n: usize) -> Result<ClientOptions> {
        let mut opts = ClientOptions::new(
            self.host.clone(),
            self.port,
            self.account(n)?,
            self.password.clone(),
        );
        match self.tls {
            TlsChoice::Starttls => {
                opts.tls = TlsMode::Require;
                opts.mechanisms = vec![SaslMechanism::ScramSha256, SaslMechanism::ScramSha1];
            }
            TlsChoice::Plain => {
                opts.tls = TlsMode::Never;
                opts.mechanisms = vec![SaslMechanism::Plain];
            }
        }
        opts.timeout = Duration::from_secs(self.login_timeout.max(1));
        Ok(opts)
    }

    /// Logs account `n` in; returns the client and how long it took.
    pub async fn login(&self, n: usize) -> Result<(Client, Duration)> {
        let opts = self.options(n)?;
        let start = Instant::now();
        let client = Client::connect(opts)
            .await
            .map_err(|e| anyhow!("login of {}{} failed: {e}", self.user_prefix, n))?;
        Ok((client, start.elapsed()))
    }

    /// Logs in accounts `first..first+count`, at most `login_concurrency` at
    /// a time, sending `initial` (e.g. `<presence/>`) on each. The result
    /// is in account order. Fails on the first failed login.
    pub async fn login_many(
        self: &Arc<Self>,
        first: usize,
        count: usize,
        initial: Option<&str>,
        progress: &ProgressBar,
    ) -> Result<Vec<Client>> {
        let sem = Arc::new(Semaphore::new(self.login_concurrency.max(1)));
        let mut set = JoinSet::new();
        for i in 0..count {
            let target = Arc::clone(self);
            let sem = Arc::clone(&sem);
            let initial = initial.map(str::to_owned);
            set.spawn(async move {
                let _permit = sem.acquire_owned().await.map_err(|e| anyhow!("{e}"))?;
                let (mut client, _) = target.login(first + i).await?;
                if let Some(xml) = initial {
                    client
                        .send_raw(&xml)
                        .await
                        .map_err(|e| anyhow!("sending initial stanza: {e}"))?;
                }
                Ok::<_, anyhow::Error>((i, client))
            });
        }
        let mut slots: Vec<Option<Client>> = (0..count).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            let (i, client) = joined.map_err(|e| anyhow!("login task failed: {e}"))??;
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(client);
            }
            progress.inc(1);
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(i, c)| c.ok_or_else(|| anyhow!("client {} did not log in", first + i)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: 5222,
            domain: "localhost".into(),
            muc_domain: "conference.localhost".into(),
            password: "pw".into(),
            user_prefix: "bench".into(),
            tls: TlsChoice::Plain,
            login_concurrency: 4,
            login_timeout: 5,
        }
    }

    #[test]
    fn accounts_are_numbered_from_the_prefix() {
        assert_eq!(target().account(7).unwrap().to_string(), "bench7@localhost");
        let mut bad = target();
        bad.domain = "bad domain@@".into();
        assert!(bad.account(1).is_err());
    }

    #[test]
    fn tls_choice_selects_mechanisms() {
        let mut t = target();
        let plain = t.options(1).unwrap();
        assert_eq!(plain.tls, TlsMode::Never);
        assert_eq!(plain.mechanisms, vec![SaslMechanism::Plain]);
        t.tls = TlsChoice::Starttls;
        let tls = t.options(1).unwrap();
        assert_eq!(tls.tls, TlsMode::Require);
        assert!(!tls.mechanisms.contains(&SaslMechanism::Plain));
    }
}
