//! The small read-only views of a book: `Bbo`, `RestingOrder`, `Exposure` and `QueuePosition`.

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::names::{side_name, stp_name};
use super::plain_data::PlainData;
use crate::accounts::Exposure;
use crate::book::{QueuePosition, RestingOrder};
use crate::types::*;

/// Best bid and offer: `(price, qty)` per side, None when that side is empty.
#[pyclass(module = "flashbook_engine", name = "Bbo", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyBbo {
    #[pyo3(get)]
    pub(super) bid: Option<(Price, Qty)>,
    #[pyo3(get)]
    pub(super) ask: Option<(Price, Qty)>,
}

// SAFETY: only plain Rust data inside.
unsafe impl PlainData for PyBbo {}

#[pymethods]
impl PyBbo {
    #[getter]
    fn bid_price(&self) -> Option<Price> {
        self.bid.map(|(price, _)| price)
    }
    #[getter]
    fn bid_qty(&self) -> Option<Qty> {
        self.bid.map(|(_, qty)| qty)
    }
    #[getter]
    fn ask_price(&self) -> Option<Price> {
        self.ask.map(|(price, _)| price)
    }
    #[getter]
    fn ask_qty(&self) -> Option<Qty> {
        self.ask.map(|(_, qty)| qty)
    }
    /// Ask price minus bid price in ticks, None unless both sides are present.
    #[getter]
    fn spread(&self) -> Option<Price> {
        Some(self.ask?.0 - self.bid?.0)
    }
    fn __repr__(&self) -> String {
        let side =
            |level: Option<(Price, Qty)>| level.map_or_else(|| "None".to_owned(), |(p, q)| format!("({p}, {q})"));
        format!("Bbo(bid={}, ask={})", side(self.bid), side(self.ask))
    }
}

/// A resting order as the book holds it (`qty` is the open quantity).
#[pyclass(module = "flashbook_engine", name = "RestingOrder", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyRestingOrder {
    #[pyo3(get)]
    order_id: OrderId,
    #[pyo3(get)]
    account: AccountId,
    side: Side,
    #[pyo3(get)]
    price: Price,
    #[pyo3(get)]
    qty: Qty,
    stp: StpMode,
    #[pyo3(get)]
    post_only: bool,
    #[pyo3(get)]
    max_position: Option<Qty>,
}

// SAFETY: only plain Rust data inside.
unsafe impl PlainData for PyRestingOrder {}

impl From<RestingOrder> for PyRestingOrder {
    fn from(o: RestingOrder) -> Self {
        PyRestingOrder {
            order_id: o.order_id,
            account: o.account,
            side: o.side,
            price: o.price,
            qty: o.qty,
            stp: o.stp,
            post_only: o.post_only,
            max_position: o.max_position,
        }
    }
}

#[pymethods]
impl PyRestingOrder {
    #[getter]
    fn side<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        side_name(py, self.side)
    }
    #[getter]
    fn stp<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        stp_name(py, self.stp)
    }
    fn __repr__(&self) -> String {
        let limit = self.max_position.map_or_else(|| "None".to_owned(), |v| v.to_string());
        format!(
            "RestingOrder(order_id={}, account={}, side='{}', price={}, qty={}, stp='{}', post_only={}, max_position={})",
            self.order_id,
            self.account,
            self.side.as_str(),
            self.price,
            self.qty,
            self.stp.as_str(),
            if self.post_only { "True" } else { "False" },
            limit
        )
    }
}

/// An account's net position (positive long) and the open quantity of its resting orders.
#[pyclass(module = "flashbook_engine", name = "Exposure", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyExposure {
    #[pyo3(get)]
    position: Qty,
    #[pyo3(get)]
    open_buy: Qty,
    #[pyo3(get)]
    open_sell: Qty,
}

// SAFETY: only plain Rust data inside.
unsafe impl PlainData for PyExposure {}

impl From<Exposure> for PyExposure {
    fn from(e: Exposure) -> Self {
        PyExposure { position: e.position, open_buy: e.open_buy, open_sell: e.open_sell }
    }
}

#[pymethods]
impl PyExposure {
    fn __repr__(&self) -> String {
        format!("Exposure(position={}, open_buy={}, open_sell={})", self.position, self.open_buy, self.open_sell)
    }
}

/// Where a resting order stands in its price level's queue: the open quantity and the number of
/// orders ahead of it (older orders at the same price, which fill first), and the level's totals.
#[pyclass(module = "flashbook_engine", name = "QueuePosition", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyQueuePosition {
    #[pyo3(get)]
    order_id: OrderId,
    side: Side,
    #[pyo3(get)]
    price: Price,
    #[pyo3(get)]
    qty: Qty,
    #[pyo3(get)]
    qty_ahead: Qty,
    #[pyo3(get)]
    orders_ahead: u32,
    #[pyo3(get)]
    level_qty: Qty,
    #[pyo3(get)]
    level_orders: u32,
}

// SAFETY: only plain Rust data inside.
unsafe impl PlainData for PyQueuePosition {}

impl From<QueuePosition> for PyQueuePosition {
    fn from(q: QueuePosition) -> Self {
        PyQueuePosition {
            order_id: q.order_id,
            side: q.side,
            price: q.price,
            qty: q.qty,
            qty_ahead: q.qty_ahead,
            orders_ahead: q.orders_ahead,
            level_qty: q.level_qty,
            level_orders: q.level_orders,
        }
    }
}

#[pymethods]
impl PyQueuePosition {
    #[getter]
    fn side<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        side_name(py, self.side)
    }
    fn __repr__(&self) -> String {
        format!(
            "QueuePosition(order_id={}, side='{}', price={}, qty={}, qty_ahead={}, orders_ahead={}, level_qty={}, level_orders={})",
            self.order_id,
            self.side.as_str(),
            self.price,
            self.qty,
            self.qty_ahead,
            self.orders_ahead,
            self.level_qty,
            self.level_orders
        )
    }
}
