//! The `conclave-scansion` command: runs scansion scripts against a server.
fn main() {}
