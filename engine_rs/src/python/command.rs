//! `Command`: one engine command as a frozen Python value, and the parsing of the lowercase enum
//! strings (`side`, `order_type`, `tif`, `stp`) that `Command.new` and `OrderBook.new_order` take.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::names::*;
use super::plain_data::{hash_debug, PlainData, Untracked};
use crate::types::*;

fn bad_enum(what: &str, value: &str, allowed: &[&str]) -> PyErr {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    PyValueError::new_err(format!("invalid {what} '{value}': expected one of {}", allowed.join(", ")))
}

fn parse_side(value: &str) -> PyResult<Side> {
    match value {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(bad_enum("side", value, &["buy", "sell"])),
    }
}

fn parse_order_type(value: &str) -> PyResult<OrderType> {
    match value {
        "limit" => Ok(OrderType::Limit),
        "market" => Ok(OrderType::Market),
        _ => Err(bad_enum("order_type", value, &["limit", "market"])),
    }
}

fn parse_tif(value: Option<&str>, order_type: OrderType) -> PyResult<TimeInForce> {
    match value {
        None if order_type == OrderType::Market => Ok(TimeInForce::Ioc),
        None => Ok(TimeInForce::Gtc),
        Some("gtc") => Ok(TimeInForce::Gtc),
        Some("ioc") => Ok(TimeInForce::Ioc),
        Some("fok") => Ok(TimeInForce::Fok),
        Some(other) => Err(bad_enum("tif", other, &["gtc", "ioc", "fok"])),
    }
}

fn parse_stp(value: &str) -> PyResult<StpMode> {
    match value {
        "none" => Ok(StpMode::None),
        "cancel_newest" => Ok(StpMode::CancelNewest),
        "cancel_oldest" => Ok(StpMode::CancelOldest),
        "cancel_both" => Ok(StpMode::CancelBoth),
        _ => Err(bad_enum("stp", value, &["none", "cancel_newest", "cancel_oldest", "cancel_both"])),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn build_new(
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
) -> PyResult<Command> {
    let order_type = parse_order_type(order_type)?;
    Ok(Command::New(NewOrder {
        order_id,
        account,
        side: parse_side(side)?,
        order_type,
        tif: parse_tif(tif, order_type)?,
        price,
        qty,
        post_only,
        stp: parse_stp(stp)?,
        max_position,
        client_ref: 0,
    }))
}

/// One command for `OrderBook.submit` / `submit_many`, built with the static constructors
/// (`Command.new`, `.market`, `.cancel`, `.replace`, `.halt`, `.resume`, `.reset`).
#[pyclass(module = "flashbook_engine", name = "Command", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PyCommand {
    pub(super) inner: Command,
}

// SAFETY: only plain Rust data inside.
unsafe impl PlainData for PyCommand {}

impl Hash for PyCommand {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_debug(&self.inner, state);
    }
}

#[pymethods]
impl PyCommand {
    /// A NEW order. `tif` defaults to "gtc" for limit orders and "ioc" for market orders; the
    /// price of a market order is ignored.
    #[staticmethod]
    #[pyo3(
        name = "new",
        signature = (order_id, account, side, price, qty, *, order_type = "limit", tif = None, post_only = false, stp = "none", max_position = None)
    )]
    #[allow(clippy::too_many_arguments)]
    fn new_order(
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
    ) -> PyResult<Untracked<Self>> {
        let inner = build_new(order_id, account, side, price, qty, order_type, tif, post_only, stp, max_position)?;
        Ok(Untracked(PyCommand { inner }))
    }

    /// A NEW market order (no price; IOC unless `tif="fok"`).
    #[staticmethod]
    #[pyo3(signature = (order_id, account, side, qty, *, tif = "ioc", stp = "none", max_position = None))]
    fn market(
        order_id: OrderId,
        account: AccountId,
        side: &str,
        qty: Qty,
        tif: &str,
        stp: &str,
        max_position: Option<Qty>,
    ) -> PyResult<Untracked<Self>> {
        let inner = build_new(order_id, account, side, 0, qty, "market", Some(tif), false, stp, max_position)?;
        Ok(Untracked(PyCommand { inner }))
    }

    #[staticmethod]
    fn cancel(order_id: OrderId, account: AccountId) -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Cancel { order_id, account } })
    }

    /// Change a resting order's price and/or remaining quantity (None keeps the current value).
    #[staticmethod]
    #[pyo3(signature = (order_id, account, *, price = None, qty = None))]
    fn replace(order_id: OrderId, account: AccountId, price: Option<Price>, qty: Option<Qty>) -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Replace { order_id, account, price, qty } })
    }

    #[staticmethod]
    fn halt() -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Halt })
    }

    #[staticmethod]
    fn resume() -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Resume })
    }

    #[staticmethod]
    fn reset() -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Reset })
    }

    /// The price band: `bps` basis points around the last trade (before any, `reference`, in
    /// ticks); 0 turns it off. The book judges the values (an invalid band is rejected).
    #[staticmethod]
    #[pyo3(signature = (bps, reference = 0))]
    fn band(bps: u32, reference: Price) -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Band { bps, reference } })
    }

    /// The volatility guard: a trade more than `bps` basis points from any trade of the last
    /// `window_ms` milliseconds pauses the book for `pause_ms`; 0 turns it off. The book judges
    /// the values (an invalid guard is rejected).
    #[staticmethod]
    #[pyo3(signature = (bps, window_ms = 0, pause_ms = 0))]
    fn volatility(bps: u32, window_ms: u64, pause_ms: u64) -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Volatility { bps, window_ms, pause_ms } })
    }

    /// The fee rates later trades carry, in basis points: the maker's (negative: a rebate) and
    /// the taker's. The book judges the values (invalid rates are rejected).
    #[staticmethod]
    fn fees(maker_bps: i32, taker_bps: i32) -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Fees { maker_bps, taker_bps } })
    }

    /// The journal's clock ticked (applied through `OrderBook.apply_entry` with the entry's id).
    #[staticmethod]
    fn clock() -> Untracked<Self> {
        Untracked(PyCommand { inner: Command::Clock })
    }

    /// "new", "cancel", "replace", "halt", "resume", "reset", "band", "volatility", "fees" or
    /// "clock".
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        command_name(py, self.inner.kind())
    }

    #[getter]
    fn order_id(&self) -> Option<OrderId> {
        match self.inner {
            Command::New(order) => Some(order.order_id),
            Command::Cancel { order_id, .. } | Command::Replace { order_id, .. } => Some(order_id),
            _ => None,
        }
    }

    #[getter]
    fn account(&self) -> Option<AccountId> {
        match self.inner {
            Command::New(order) => Some(order.account),
            Command::Cancel { account, .. } | Command::Replace { account, .. } => Some(account),
            _ => None,
        }
    }

    #[getter]
    fn side<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.new_fields().map(|order| side_name(py, order.side))
    }

    #[getter]
    fn order_type<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.new_fields().map(|order| order_type_name(py, order.order_type))
    }

    #[getter]
    fn tif<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.new_fields().map(|order| tif_name(py, order.tif))
    }

    /// The limit price of a NEW limit order, the new price of a REPLACE or a BAND's reference,
    /// else None.
    #[getter]
    fn price(&self) -> Option<Price> {
        match self.inner {
            Command::New(order) if order.order_type == OrderType::Limit => Some(order.price),
            Command::Replace { price, .. } => price,
            Command::Band { reference, .. } => Some(reference),
            _ => None,
        }
    }

    /// A BAND's width or a VOLATILITY's largest move in basis points, else None.
    #[getter]
    fn bps(&self) -> Option<u32> {
        match self.inner {
            Command::Band { bps, .. } | Command::Volatility { bps, .. } => Some(bps),
            _ => None,
        }
    }

    /// A VOLATILITY's window and pause in milliseconds, else None.
    #[getter]
    fn window_ms(&self) -> Option<u64> {
        match self.inner {
            Command::Volatility { window_ms, .. } => Some(window_ms),
            _ => None,
        }
    }

    #[getter]
    fn pause_ms(&self) -> Option<u64> {
        match self.inner {
            Command::Volatility { pause_ms, .. } => Some(pause_ms),
            _ => None,
        }
    }

    /// A FEES's rates in basis points, else None.
    #[getter]
    fn maker_bps(&self) -> Option<i32> {
        match self.inner {
            Command::Fees { maker_bps, .. } => Some(maker_bps),
            _ => None,
        }
    }

    #[getter]
    fn taker_bps(&self) -> Option<i32> {
        match self.inner {
            Command::Fees { taker_bps, .. } => Some(taker_bps),
            _ => None,
        }
    }

    #[getter]
    fn qty(&self) -> Option<Qty> {
        match self.inner {
            Command::New(order) => Some(order.qty),
            Command::Replace { qty, .. } => qty,
            _ => None,
        }
    }

    #[getter]
    fn post_only(&self) -> Option<bool> {
        self.new_fields().map(|order| order.post_only)
    }

    #[getter]
    fn stp<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        self.new_fields().map(|order| stp_name(py, order.stp))
    }

    #[getter]
    fn max_position(&self) -> Option<Qty> {
        self.new_fields().and_then(|order| order.max_position)
    }

    /// A Python expression that rebuilds this command.
    fn __repr__(&self) -> String {
        let optional = |value: Option<i64>| value.map_or_else(|| "None".to_owned(), |v| v.to_string());
        match self.inner {
            Command::New(o) => {
                let mut out =
                    format!("Command.new({}, {}, '{}', {}, {}", o.order_id, o.account, o.side.as_str(), o.price, o.qty);
                if o.order_type != OrderType::Limit {
                    let _ = write!(out, ", order_type='{}'", o.order_type.as_str());
                }
                let default_tif = if o.order_type == OrderType::Market { TimeInForce::Ioc } else { TimeInForce::Gtc };
                if o.tif != default_tif {
                    let _ = write!(out, ", tif='{}'", o.tif.as_str());
                }
                if o.post_only {
                    out.push_str(", post_only=True");
                }
                if o.stp != StpMode::None {
                    let _ = write!(out, ", stp='{}'", o.stp.as_str());
                }
                if let Some(limit) = o.max_position {
                    let _ = write!(out, ", max_position={limit}");
                }
                out.push(')');
                out
            }
            Command::Cancel { order_id, account } => {
                format!("Command.cancel({order_id}, {account})")
            }
            Command::Replace { order_id, account, price, qty } => {
                format!("Command.replace({order_id}, {account}, price={}, qty={})", optional(price), optional(qty))
            }
            Command::Halt => "Command.halt()".to_owned(),
            Command::Resume => "Command.resume()".to_owned(),
            Command::Reset => "Command.reset()".to_owned(),
            Command::Band { bps, reference } => format!("Command.band({bps}, {reference})"),
            Command::Volatility { bps, window_ms, pause_ms } => {
                format!("Command.volatility({bps}, {window_ms}, {pause_ms})")
            }
            Command::Fees { maker_bps, taker_bps } => format!("Command.fees({maker_bps}, {taker_bps})"),
            Command::Clock => "Command.clock()".to_owned(),
        }
    }
}

impl PyCommand {
    fn new_fields(&self) -> Option<NewOrder> {
        match self.inner {
            Command::New(order) => Some(order),
            _ => None,
        }
    }
}
