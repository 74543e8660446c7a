//! `run_worker`: the engine worker (`crate::worker`) started from Python, the GIL released while
//! it runs.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::error::WorkerError;
use crate::feed::shard_of;
use crate::worker::{run_blocking, Discovery, WorkerConfig};

/// Runs the engine worker until SIGINT/SIGTERM (or until every journal is drained, with
/// `exit_when_drained`), with the GIL released. Returns one report per symbol. `shard`: `(i, n)`
/// to also serve, as they are enabled, the registry's symbols of shard `i` of `n` (from 1),
/// looked for every `discover_interval_ms`.
#[pyfunction]
#[pyo3(signature = (redis_url, prefix, symbols, *, batch_size = 2000, block_ms = 200, snapshot_every = 100_000,
    snapshot_interval = 30.0, book_interval_ms = 50, book_levels = 20, reply_ttl_ms = 30_000, exit_when_drained = false,
    shard = None, discover_interval_ms = 500))]
#[allow(clippy::too_many_arguments)]
pub(super) fn run_worker<'py>(
    py: Python<'py>,
    redis_url: &str,
    prefix: &str,
    symbols: Vec<String>,
    batch_size: usize,
    block_ms: u64,
    snapshot_every: u64,
    snapshot_interval: f64,
    book_interval_ms: u64,
    book_levels: usize,
    reply_ttl_ms: u64,
    exit_when_drained: bool,
    shard: Option<(u32, u32)>,
    discover_interval_ms: u64,
) -> PyResult<Bound<'py, PyList>> {
    if !(snapshot_interval.is_finite() && snapshot_interval > 0.0) {
        return Err(PyValueError::new_err("snapshot_interval must be a positive number of seconds"));
    }
    let discovery = match shard {
        None => None,
        Some((index, shards)) if index >= 1 && index <= shards => Some(Discovery {
            shard: index - 1,
            shards,
            interval: std::time::Duration::from_millis(discover_interval_ms.max(10)),
        }),
        Some((index, shards)) => {
            return Err(PyValueError::new_err(format!("shard {index} of {shards}: shards are numbered 1 to {shards}")))
        }
    };
    let mut config = WorkerConfig::new(redis_url, prefix, symbols);
    config.batch_size = batch_size;
    config.block_ms = block_ms;
    config.snapshot_every = snapshot_every.max(1);
    config.snapshot_interval = std::time::Duration::from_secs_f64(snapshot_interval);
    config.book_interval = std::time::Duration::from_millis(book_interval_ms);
    config.book_levels = book_levels;
    config.reply_ttl_ms = reply_ttl_ms;
    config.exit_when_drained = exit_when_drained;
    config.discovery = discovery;
    let reports = py.detach(|| run_blocking(config)).map_err(|error| match error {
        WorkerError::Config(message) => PyValueError::new_err(message),
        other => pyo3::exceptions::PyRuntimeError::new_err(other.to_string()),
    })?;
    let list = PyList::empty(py);
    for report in reports {
        let dict = PyDict::new(py);
        dict.set_item("symbol", report.symbol)?;
        dict.set_item("commands", report.commands)?;
        dict.set_item("events_written", report.events_written)?;
        dict.set_item("seq", report.seq)?;
        dict.set_item("last_journal_id", report.last_journal_id)?;
        dict.set_item("state_hash", report.state_hash)?;
        dict.set_item("recoveries", report.recoveries)?;
        list.append(dict)?;
    }
    Ok(list)
}

/// The engine shard (from 1) of `shards` that serves `symbol`: the rule the workers discover their
/// symbols by (its Redis Cluster key slot modulo the number of shards).
#[pyfunction]
pub(super) fn symbol_shard(symbol: &str, shards: u32) -> PyResult<u32> {
    if shards == 0 {
        return Err(PyValueError::new_err("shards must be at least 1"));
    }
    Ok(shard_of(symbol, shards) + 1)
}
