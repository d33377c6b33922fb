//! `conclave user ...`: account management through the store, usable while
//! the server runs (SQLite allows concurrent access).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail, Context};
use conclave_server::config::Config;
use conclave_server::server::{add_user, open_store_with, set_password, StoreOptions};
use conclave_store::StoreError;
use jid::BareJid;

use crate::cli::UserAction;

/// Parses a local account JID: `user@host` with `host` one of the configured hosts.
fn account(config: &Config, jid: &str) -> anyhow::Result<BareJid> {
    let bare = BareJid::new(jid).map_err(|e| anyhow!("invalid JID {jid:?}: {e}"))?;
    if bare.node().is_none() {
        bail!("{jid:?} has no user part (expected user@host)");
    }
    let hosts = config.hosts();
    if !hosts.iter().any(|h| h == bare.domain().as_str()) {
        bail!(
            "{} is not a host of this server (hosts: {})",
            bare.domain(),
            hosts.join(", ")
        );
    }
    Ok(bare)
}

/// The password from the flag, else prompted for on a terminal, else one
/// line of standard input.
fn password(flag: Option<String>, jid: &BareJid) -> anyhow::Result<String> {
    if let Some(p) = flag {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for {jid}: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password")?;
    let p = line.trim_end_matches(['\n', '\r']).to_owned();
    if p.is_empty() {
        bail!("empty password");
    }
    Ok(p)
}

pub async fn run(config: Config, store: StoreOptions, action: UserAction) -> anyhow::Result<()> {
    let store = open_store_with(&config, store).await?;
    match action {
        UserAction::Add { jid, password: pw } => {
            let jid = account(&config, &jid)?;
            let pw = password(pw, &jid)?;
            match add_user(store.as_ref(), &jid, &pw).await {
                Ok(()) => println!("created {jid}"),
                Err(StoreError::AlreadyExists) => bail!("{jid} already exists"),
                Err(e) => bail!("cannot create {jid}: {e}"),
            }
        }
        UserAction::Passwd { jid, password: pw } => {
            let jid = account(&config, &jid)?;
            let pw = password(pw, &jid)?;
            match set_password(store.as_ref(), &jid, &pw).await {
                Ok(()) => println!("password of {jid} changed"),
                Err(StoreError::NoSuchAccount) => bail!("{jid} does not exist"),
                Err(e) => bail!("cannot change the password of {jid}: {e}"),
            }
        }
        UserAction::Del { jid } => {
            let jid = account(&config, &jid)?;
            let (host, user) = (
                jid.domain().as_str(),
                jid.node().map(|n| n.as_str()).unwrap_or_default(),
            );
            match store.delete_account(host, user).await {
                Ok(()) => println!("deleted {jid}"),
                Err(StoreError::NoSuchAccount) => bail!("{jid} does not exist"),
                Err(e) => bail!("cannot delete {jid}: {e}"),
            }
        }
        UserAction::List { host } => {
            let hosts = match host {
                Some(h) => {
                    if !config.hosts().contains(&h) {
                        bail!("{h} is not a host of this server");
                    }
                    vec![h]
                }
                None => config.hosts(),
            };
            for h in hosts {
                for u in store
                    .list_accounts(&h)
                    .await
                    .map_err(|e| anyhow!("cannot list {h}: {e}"))?
                {
                    println!("{u}@{h}");
                }
            }
        }
    }
    Ok(())
}
