//! Flashbook's matching engine.
//!
//! One [`OrderBook`] per symbol: price-time priority on integer ticks, trades at the maker's price,
//! self-trade prevention, per-account position limits, gap-free sequenced events, and snapshots
//! that restore exactly. The book is deterministic: the same commands give byte-identical events.
//!
//! Modules by concern: [`types`] (commands, events), [`ladder`] (ordered price levels), [`book`]
//! (matching), [`accounts`] (exposure), [`snapshot`] (snapshot, restore, state hash); for the
//! Redis worker [`codec`], [`journal`], [`feed`], [`connect`] (one server or a Redis Cluster),
//! [`worker`] and its [`error`] type (the journal reader and the log format are private to it);
//! and the Python bindings behind the `python` feature.

pub mod accounts;
pub mod book;
pub mod codec;
pub mod connect;
pub mod error;
pub mod feed;
pub mod journal;
mod journal_reader;
pub mod ladder;
mod logging;
pub mod snapshot;
pub mod types;
mod volatility;
pub mod worker;

#[cfg(feature = "python")]
mod python;

pub use accounts::Exposure;
pub use book::{LevelQueue, OrderBook, QueuePosition, RestingOrder};
pub use snapshot::SnapshotError;
pub use types::*;
