//! The command line, as other tools rely on it:
//! `conclave [--config FILE] serve | user add JID [--password PW] |
//! user passwd JID [--password PW] | user del JID | user list [HOST] | check`,
//! and `--allow-empty-store` with any of them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "conclave", version, about = "Conclave XMPP server")]
pub struct Cli {
    /// Configuration file (TOML). Without it, the embedded defaults are used.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Start on an SQLite database that is missing or empty although it
    /// held accounts or rooms, beginning anew with no data (refused
    /// without this option).
    #[arg(long, global = true)]
    pub allow_empty_store: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Manage accounts (works whether or not the server is running).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Validate the configuration and print every problem found.
    Check,
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Create an account.
    Add {
        jid: String,
        /// The password; prompted for (or read from standard input) when absent.
        #[arg(long)]
        password: Option<String>,
    },
    /// Change an account's password.
    Passwd {
        jid: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete an account and everything it owns.
    Del { jid: String },
    /// List the accounts of one host (all hosts when absent).
    List { host: Option<String> },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let c = Cli::try_parse_from(["conclave", "--config", "x.toml", "serve"]).unwrap();
        assert_eq!(c.config, Some(PathBuf::from("x.toml")));
        assert!(matches!(c.command, Command::Serve));
        let c = Cli::try_parse_from(["conclave", "user", "add", "a@localhost", "--password", "pw"])
            .unwrap();
        match c.command {
            Command::User {
                action: UserAction::Add { jid, password },
            } => {
                assert_eq!(jid, "a@localhost");
                assert_eq!(password.as_deref(), Some("pw"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let c = Cli::try_parse_from(["conclave", "user", "list"]).unwrap();
        assert!(matches!(
            c.command,
            Command::User {
                action: UserAction::List { host: None }
            }
        ));
        assert!(Cli::try_parse_from(["conclave", "check"]).is_ok());
        assert!(Cli::try_parse_from(["conclave", "user", "del"]).is_err());
    }
}
