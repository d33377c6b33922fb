//! Conclave's load generator: drives any XMPP server over loopback and
//! measures it from the clients' side only.
//!
//! - [`login`]: scenario 1, login storm.
//! - [`chat`]: scenario 2, one-to-one chat.
//! - [`muc`]: scenario 3, group chat fan-out.
//! - [`idle`]: scenario 4, idle memory footprint.
//! - [`flow`]: the timed send/receive step chat and group chat share.
//! - [`saturate`]: stepping the load up to the saturation point.
//! - [`payload`], [`tracker`], [`stats`]: stamped bodies, loss and
//!   duplicate detection, latency histograms.
//! - [`record`], [`report`], [`plot`]: JSON records, the Markdown
//!   comparison and the SVG plot.

pub mod chat;
pub mod conn;
pub mod flow;
pub mod idle;
pub mod login;
pub mod muc;
pub mod payload;
pub mod plot;
pub mod record;
pub mod report;
pub mod rss;
pub mod saturate;
pub mod stats;
pub mod tracker;
