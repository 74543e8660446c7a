//! `OrderBook`: one symbol's book, its commands, views and snapshots; and `SnapshotError`, what
//! `OrderBook.restore` raises.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use pyo3::{create_exception, intern};

use super::codec::entry_fields;
use super::command::{build_new, PyCommand};
use super::event::PyEvent;
use super::plain_data::Untracked;
use super::values::{PyBbo, PyExposure, PyQueuePosition, PyRestingOrder};
use crate::book::OrderBook;
use crate::types::*;

create_exception!(
    flashbook_engine,
    SnapshotError,
    PyValueError,
    "Bytes that are not a valid Flashbook snapshot (wrong format, truncated, corrupted or inconsistent)."
);

/// Batches at least this long are matched with the interpreter detached (other Python threads run
/// meanwhile). Below it, detaching and re-attaching would cost more than it frees.
const DETACH_MIN_COMMANDS: usize = 64;
/// Books with at least this many resting orders are snapshotted and hashed detached.
const DETACH_MIN_ORDERS: usize = 4096;
/// Snapshots at least this long are restored detached.
const DETACH_MIN_BYTES: usize = 64 * 1024;
/// Upper bound for `OrderBook(capacity=...)`: a pre-sizing hint, not a limit on the book. Refusing
/// absurd values keeps a typo from aborting the process on a failed allocation.
const MAX_CAPACITY: usize = 1 << 24;
/// The scratch event buffer is shrunk back after a batch left it larger than this.
const SCRATCH_KEEP: usize = 1 << 16;

/// One symbol's limit order book. Not for concurrent use from several threads (a second thread
/// gets "Already borrowed" while a call is in progress).
#[pyclass(module = "flashbook_engine", name = "OrderBook")]
pub struct PyOrderBook {
    book: OrderBook,
    /// Reused for every command's events, so a call allocates only the Python objects.
    scratch: Vec<Event>,
}

impl PyOrderBook {
    fn wrap(book: OrderBook) -> Self {
        PyOrderBook { book, scratch: Vec::with_capacity(16) }
    }

    fn run<'py>(&mut self, py: Python<'py>, command: &Command) -> PyResult<Bound<'py, PyList>> {
        self.scratch.clear();
        self.book.apply(command, &mut self.scratch);
        self.take_events(py)
    }

    fn take_events<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::new(py, self.scratch.iter().map(|&inner| Untracked(PyEvent { inner })));
        self.scratch.clear();
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch.shrink_to(16);
        }
        list
    }
}

fn snapshot_error(error: crate::snapshot::SnapshotError) -> PyErr {
    SnapshotError::new_err(error.to_string())
}

#[pymethods]
impl PyOrderBook {
    /// An empty book for `symbol`; `capacity` pre-sizes it for that many resting orders.
    #[new]
    #[pyo3(signature = (symbol, capacity = 0))]
    fn py_new(symbol: &str, capacity: usize) -> PyResult<Self> {
        if symbol.is_empty() {
            return Err(PyValueError::new_err("symbol must be a non-empty string"));
        }
        if capacity > MAX_CAPACITY {
            return Err(PyValueError::new_err(format!("capacity {capacity} is above the maximum {MAX_CAPACITY}")));
        }
        Ok(Self::wrap(OrderBook::with_capacity(symbol, capacity)))
    }

    // --- commands ---

    /// Submits a NEW order and returns its events. `tif` defaults to "gtc" for limit orders and
    /// "ioc" for market orders; the price of a market order is ignored.
    #[pyo3(signature = (order_id, account, side, price, qty, *, order_type = "limit", tif = None, post_only = false, stp = "none", max_position = None))]
    #[allow(clippy::too_many_arguments)]
    fn new_order<'py>(
        &mut self,
        py: Python<'py>,
        order_id: OrderId,
        account: AccountId,
        side: &str,
        price: Price,
        qty: Qty,
        order_type: &str,
        tif: Option<&str>,
        post_only: bool,
        stp: &str,
        max_position: Option<Qty>,
    ) -> PyResult<Bound<'py, PyList>> {
        let command = build_new(order_id, account, side, price, qty, order_type, tif, post_only, stp, max_position)?;
        self.run(py, &command)
    }

    /// Submits a NEW market order (IOC unless `tif="fok"`) and returns its events.
    #[pyo3(signature = (order_id, account, side, qty, *, tif = "ioc", stp = "none", max_position = None))]
    #[allow(clippy::too_many_arguments)]
    fn market_order<'py>(
        &mut self,
        py: Python<'py>,
        order_id: OrderId,
        account: AccountId,
        side: &str,
        qty: Qty,
        tif: &str,
        stp: &str,
        max_position: Option<Qty>,
    ) -> PyResult<Bound<'py, PyList>> {
        let command = build_new(order_id, account, side, 0, qty, "market", Some(tif), false, stp, max_position)?;
        self.run(py, &command)
    }

    /// Cancels a resting order of `account`.
    fn cancel<'py>(&mut self, py: Python<'py>, order_id: OrderId, account: AccountId) -> PyResult<Bound<'py, PyList>> {
        self.run(py, &Command::Cancel { order_id, account })
    }

    /// Changes a resting order's price and/or remaining quantity (None keeps the current value).
    #[pyo3(signature = (order_id, account, *, price = None, qty = None))]
    fn replace<'py>(
        &mut self,
        py: Python<'py>,
        order_id: OrderId,
        account: AccountId,
        price: Option<Price>,
        qty: Option<Qty>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.run(py, &Command::Replace { order_id, account, price, qty })
    }

    fn halt<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.run(py, &Command::Halt)
    }

    fn resume<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.run(py, &Command::Resume)
    }

    /// Cancels every resting order and zeroes every position; the sequence continues.
    fn reset<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.run(py, &Command::Reset)
    }

    /// The lowest and highest limit prices the price band allows now, or None without a band.
    #[getter]
    fn band_limits(&self) -> Option<(Price, Price)> {
        self.book.band_limits()
    }

    /// The volatility guard: `(bps, window_ms, pause_ms, paused_until)`, `paused_until` 0 when
    /// not paused; bps 0 when off.
    #[getter]
    fn volatility(&self) -> (u32, u64, u64, u64) {
        self.book.volatility()
    }

    /// Whether the volatility guard pauses the book now.
    #[getter]
    fn paused(&self) -> bool {
        self.book.is_paused()
    }

    /// The fee rates trades carry: `(maker_bps, taker_bps)`.
    #[getter]
    fn fees(&self) -> (i32, i32) {
        self.book.fees()
    }

    /// The journal's clock as far as the book knows it, in milliseconds.
    #[getter]
    fn now_ms(&self) -> u64 {
        self.book.now_ms()
    }

    /// Moves the book's clock to `now_ms` (an earlier time is ignored) and returns the events
    /// that causes: `PAUSE_ENDED` when a volatility pause is over, else none. The research
    /// simulator calls it with its simulated time; the worker with each journal entry's.
    fn advance_clock<'py>(&mut self, py: Python<'py>, now_ms: u64) -> PyResult<Bound<'py, PyList>> {
        self.scratch.clear();
        self.book.advance_clock(now_ms, &mut self.scratch);
        self.take_events(py)
    }

    /// Applies one `Command` and returns its events.
    fn submit<'py>(&mut self, py: Python<'py>, command: &Bound<'py, PyCommand>) -> PyResult<Bound<'py, PyList>> {
        let command = command.get().inner;
        self.run(py, &command)
    }

    /// Applies an iterable of `Command`s in order and returns all their events, flat. Every item is
    /// checked first: if one is not a `Command`, TypeError is raised and nothing is applied.
    fn submit_many<'py>(&mut self, py: Python<'py>, commands: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        // `len()` is only a hint (and not every iterable has one); cap it so a lying `__len__`
        // cannot make us reserve absurd amounts of memory.
        let mut batch: Vec<Command> = Vec::with_capacity(commands.len().unwrap_or(0).min(1 << 20));
        for (index, item) in commands.try_iter()?.enumerate() {
            let item = item?;
            let Ok(command) = item.cast::<PyCommand>() else {
                return Err(PyTypeError::new_err(format!(
                    "submit_many: item {index} is {}, not a Command",
                    item.get_type().name()?
                )));
            };
            batch.push(command.get().inner);
        }
        let PyOrderBook { book, scratch } = self;
        scratch.clear();
        if batch.len() >= DETACH_MIN_COMMANDS {
            py.detach(|| batch.iter().for_each(|command| book.apply(command, scratch)));
        } else {
            batch.iter().for_each(|command| book.apply(command, scratch));
        }
        self.take_events(py)
    }

    /// Applies one journal entry exactly as the engine worker does — decoding its stream fields
    /// (a mapping or a sequence of pairs, keys and values `str` or `bytes`) and turning an
    /// undecodable entry into a `MALFORMED` rejection — and returns its events. For in-process
    /// replays of a journal that must reach the worker's state. `entry_id`, the entry's stream id,
    /// moves the book's clock to its time first, as the worker does.
    #[pyo3(signature = (fields, entry_id = None))]
    fn apply_entry<'py>(
        &mut self,
        py: Python<'py>,
        fields: &Bound<'py, PyAny>,
        entry_id: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        let owned = entry_fields(fields)?;
        let pairs: Vec<(&[u8], &[u8])> = owned.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        self.scratch.clear();
        crate::journal::apply_entry(&mut self.book, entry_id, &pairs, &mut self.scratch);
        self.take_events(py)
    }

    // --- views ---

    fn bbo(&self) -> Untracked<PyBbo> {
        let bbo = self.book.bbo();
        Untracked(PyBbo { bid: bbo.bid, ask: bbo.ask })
    }

    /// The best `levels` aggregated levels per side, best first: `(bids, asks)`, each a list of
    /// `(price, qty)`.
    #[pyo3(signature = (levels = 10))]
    #[allow(clippy::type_complexity)]
    fn depth(&self, levels: usize) -> (Vec<(Price, Qty)>, Vec<(Price, Qty)>) {
        let depth = self.book.depth(levels);
        (depth.bids, depth.asks)
    }

    /// The resting order with this id, or None.
    fn order(&self, order_id: OrderId) -> Option<Untracked<PyRestingOrder>> {
        self.book.order(order_id).map(|order| Untracked(PyRestingOrder::from(order)))
    }

    /// Every resting order in priority order: bids best to worst, then asks best to worst, each
    /// level oldest first.
    fn resting_orders<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.book.resting_orders().into_iter().map(|order| Untracked(PyRestingOrder::from(order))))
    }

    /// Where the resting order `order_id` stands in its price level's queue (None: not resting).
    fn queue_position(&self, order_id: OrderId) -> Option<Untracked<PyQueuePosition>> {
        self.book.queue_position(order_id).map(|position| Untracked(PyQueuePosition::from(position)))
    }

    /// `queue_position` of each id, in order (None for an order not resting): one call for all of
    /// an account's open orders.
    fn queue_positions<'py>(&self, py: Python<'py>, order_ids: Vec<OrderId>) -> PyResult<Bound<'py, PyList>> {
        let positions = self.book.queue_positions(&order_ids);
        PyList::new(py, positions.into_iter().map(|position| position.map(|p| Untracked(PyQueuePosition::from(p)))))
    }

    /// An account's position and open quantities (all zero for an account the book has not seen).
    fn exposure(&self, account: AccountId) -> Untracked<PyExposure> {
        Untracked(self.book.exposure(account).into())
    }

    /// Every account with a non-zero position or open quantity, by account id.
    fn exposures<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (account, exposure) in self.book.exposures() {
            dict.set_item(account, Untracked(PyExposure::from(exposure)))?;
        }
        Ok(dict)
    }

    #[getter]
    fn symbol(&self) -> &str {
        self.book.symbol()
    }

    /// Sequence number of the last event (0 before the first).
    #[getter]
    fn seq(&self) -> Seq {
        self.book.seq()
    }

    #[getter]
    fn halted(&self) -> bool {
        self.book.is_halted()
    }

    /// The highest order id this book has seen; a NEW must carry a larger one.
    #[getter]
    fn last_order_id(&self) -> OrderId {
        self.book.last_order_id()
    }

    #[getter]
    fn order_count(&self) -> usize {
        self.book.order_count()
    }

    #[getter]
    fn level_count(&self) -> usize {
        self.book.level_count()
    }

    // --- state ---

    /// A 64-bit fingerprint of the state that decides future matching (equal books hash equal).
    fn state_hash(&self, py: Python<'_>) -> u64 {
        let book = &self.book;
        if book.order_count() >= DETACH_MIN_ORDERS {
            py.detach(|| book.state_hash())
        } else {
            book.state_hash()
        }
    }

    /// The book's full state as bytes, for `OrderBook.restore`.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let book = &self.book;
        let bytes =
            if book.order_count() >= DETACH_MIN_ORDERS { py.detach(|| book.snapshot()) } else { book.snapshot() };
        PyBytes::new(py, &bytes)
    }

    /// Rebuilds a book from `snapshot()` bytes (any bytes-like object); raises SnapshotError if
    /// they are not a valid snapshot.
    #[staticmethod]
    fn restore(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let owned;
        let bytes: &[u8] = if let Ok(bytes) = data.cast::<PyBytes>() {
            bytes.as_bytes()
        } else {
            let Ok(buffer) = PyBuffer::<u8>::get(data) else {
                return Err(PyTypeError::new_err(format!(
                    "restore() expects a bytes-like object, not {}",
                    data.get_type().name()?
                )));
            };
            owned = buffer.to_vec(py)?;
            &owned
        };
        let book = if bytes.len() >= DETACH_MIN_BYTES {
            py.detach(|| OrderBook::restore(bytes))
        } else {
            OrderBook::restore(bytes)
        };
        book.map(Self::wrap).map_err(snapshot_error)
    }

    /// Pickling (and `copy.copy` / `copy.deepcopy`) goes through a snapshot.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let restore = slf.get_type().getattr(intern!(py, "restore"))?;
        let snapshot = slf.borrow().snapshot(py);
        Ok((restore, PyTuple::new(py, [snapshot])?))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "OrderBook(symbol={}, seq={}, orders={}, levels={}{})",
            PyString::new(py, self.book.symbol()).repr()?,
            self.book.seq(),
            self.book.order_count(),
            self.book.level_count(),
            if self.book.is_halted() { ", halted=True" } else { "" }
        ))
    }
}
