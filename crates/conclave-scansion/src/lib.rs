//! Scansion runner.
