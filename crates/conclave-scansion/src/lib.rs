//! Conclave's scansion runner and the XMPP client it drives.
//!
//! - [`client`]: an async XMPP client (also used by the load generator).
//! - [`script`]: the scansion script format, parsed into typed steps.
//! - [`matcher`]: matching a received stanza against an expected one.
//! - [`runner`]: running a script against a server.

pub mod client;
pub mod matcher;
pub mod runner;
pub mod script;
mod tls;
pub mod xml;

pub use runner::{run_script, Failure, RunOptions, ScriptOutcome};
pub use script::{ClientDecl, ParseError, Script};
