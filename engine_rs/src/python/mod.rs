//! Python bindings: the `flashbook_engine._engine` extension module (built by maturin with the
//! `python` feature; `python/flashbook_engine/` is its Python face and `_engine.pyi` its stubs).
//!
//! Design notes:
//! * Enum values cross the boundary as short lowercase strings (`"buy"`, `"gtc"`, ...) on input and
//!   as interned Python strings on output, spelled exactly like the engine's `as_str`. Reject and
//!   cancel reasons and book statuses are upper-case (`"UNKNOWN_ORDER"`), as in the engine.
//! * `Event`, `Command`, `Bbo`, `RestingOrder`, `Exposure` and `QueuePosition` are frozen value objects. `Event` and
//!   `Command` wrap the engine's own `Copy` structs, so creating one is a copy into a fresh Python
//!   object; the flat attributes are computed on access. None of them is tracked by the cycle
//!   collector (see [`plain_data`]).
//! * Bad Python input (a wrong enum string, an id that does not fit a u64, a float price) raises
//!   `ValueError`/`OverflowError`/`TypeError` before the book is touched. Anything the engine can
//!   judge (zero quantity, unknown order, ...) is the engine's business: a `rejected` event.
//! * Batches (`submit_many`) are converted to engine commands first — a bad item raises and
//!   nothing is applied — and large ones are matched with the interpreter detached.
//!
//! One module per class (or family of classes); this one only registers them. The modules depend
//! on each other in one direction: `plain_data` and `names` at the bottom, then `event`,
//! `command` and `values`, then `codec`, then `book`; `worker` stands apart.

mod book;
mod codec;
mod command;
mod event;
mod names;
mod plain_data;
mod values;
mod worker;

use pyo3::prelude::*;

use crate::types::{MAX_PRICE, MAX_QTY};

/// Flashbook's Rust matching engine (compiled extension; import it as `flashbook_engine`).
#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<book::PyOrderBook>()?;
    m.add_class::<event::PyEvent>()?;
    m.add_class::<command::PyCommand>()?;
    m.add_class::<values::PyBbo>()?;
    m.add_class::<values::PyRestingOrder>()?;
    m.add_class::<values::PyExposure>()?;
    m.add_class::<values::PyQueuePosition>()?;
    m.add_function(wrap_pyfunction!(codec::decode_events, m)?)?;
    m.add_function(wrap_pyfunction!(codec::command_fields, m)?)?;
    m.add_function(wrap_pyfunction!(worker::run_worker, m)?)?;
    m.add_function(wrap_pyfunction!(worker::symbol_shard, m)?)?;
    m.add("SnapshotError", m.py().get_type::<book::SnapshotError>())?;
    m.add("MAX_PRICE", MAX_PRICE)?;
    m.add("MAX_QTY", MAX_QTY)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
