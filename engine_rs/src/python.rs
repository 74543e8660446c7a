//! Python bindings: the `flashbook_engine._engine` extension module (built by maturin with the
//! `python` feature; `python/flashbook_engine/` is its Python face and `_engine.pyi` its stubs).
//!
//! Design notes:
//! * Enum values cross the boundary as short lowercase strings (`"buy"`, `"gtc"`, ...) on input and
//!   as interned Python strings on output, spelled exactly like the engine's `as_str`. Reject and
//!   cancel reasons and book statuses are upper-case (`"UNKNOWN_ORDER"`), as in the engine.
//! * `Event`, `Command`, `Bbo`, `RestingOrder` and `Exposure` are frozen value objects. `Event` and
//!   `Command` wrap the engine's own `Copy` structs, so creating one is a copy into a fresh Python
//!   object; the flat attributes are computed on access. None of them is tracked by the cycle
//!   collector (see [`untracked`]).
//! * Bad Python input (a wrong enum string, an id that does not fit a u64, a float price) raises
//!   `ValueError`/`OverflowError`/`TypeError` before the book is touched. Anything the engine can
//!   judge (zero quantity, unknown order, ...) is the engine's business: a `rejected` event.
//! * Batches (`submit_many`) are converted to engine commands first — a bad item raises and
//!   nothing is applied — and large ones are matched with the interpreter detached.

use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use pyo3::{create_exception, intern};

use crate::accounts::Exposure;
use crate::book::{OrderBook, RestingOrder};
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

// ----- untracked value objects -----------------------------------------------------------------

/// A `#[pyclass]` whose instances hold no Python references, so they can never be part of a
/// reference cycle.
///
/// # Safety
/// Implement only for classes with no `Py`/`Bound` (or anything holding one) inside.
unsafe trait PlainData: pyo3::PyClass + Into<PyClassInitializer<Self>> {}

/// Creates a Python object for a [`PlainData`] class and takes it off the cycle collector's
/// lists. PyO3 gives every class GC support, so each new event would otherwise count towards the
/// next collection and be traversed by it — with a large batch of events alive at once, that is
/// most of the cost. CPython does the same for tuples and dicts of atomic values.
fn untracked<T: PlainData>(py: Python<'_>, value: T) -> PyResult<Bound<'_, T>> {
    let object = Bound::new(py, value)?;
    // SAFETY: `object` is alive and of a GC-enabled type; untracking only hides it from the cycle
    // collector, which has nothing to find in it (PlainData). Deallocation untracks again, which
    // CPython allows for an untracked object.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(object.as_ptr().cast()) };
    Ok(object)
}

/// Converts a [`PlainData`] value with [`untracked`], for `PyList::new` and return values.
struct Untracked<T>(T);

impl<'py, T: PlainData> IntoPyObject<'py> for Untracked<T> {
    type Target = T;
    type Output = Bound<'py, T>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, T>> {
        untracked(py, self.0)
    }
}

// ----- enum names ------------------------------------------------------------------------------

/// Interned Python strings for an engine enum, spelled by its `as_str`, indexed by discriminant.
/// The variant list is checked at compile time: complete (an exhaustive match) and in
/// discriminant order.
macro_rules! py_names {
    ($fn_name:ident, $ty:ty, [$($variant:path),+ $(,)?]) => {
        fn $fn_name(py: Python<'_>, value: $ty) -> Bound<'_, PyString> {
            const VARIANTS: &[$ty] = &[$($variant),+];
            const _: () = {
                let mut i = 0;
                while i < VARIANTS.len() {
                    assert!(VARIANTS[i] as usize == i, "variants out of discriminant order");
                    i += 1;
                }
            };
            const _: fn($ty) = |value| match value {
                $($variant)|+ => {}
            };
            static NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
            let names = NAMES.get_or_init(py, || {
                VARIANTS.iter().map(|v| PyString::intern(py, v.as_str()).unbind()).collect()
            });
            names[value as usize].bind(py).clone()
        }
    };
}

py_names!(side_name, Side, [Side::Buy, Side::Sell]);
py_names!(order_type_name, OrderType, [OrderType::Limit, OrderType::Market]);
py_names!(tif_name, TimeInForce, [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok]);
py_names!(stp_name, StpMode, [StpMode::None, StpMode::CancelNewest, StpMode::CancelOldest, StpMode::CancelBoth]);
py_names!(
    command_name,
    CommandKind,
    [
        CommandKind::New,
        CommandKind::Cancel,
        CommandKind::Replace,
        CommandKind::Halt,
        CommandKind::Resume,
        CommandKind::Reset
    ]
);
py_names!(
    reject_name,
    RejectReason,
    [
        RejectReason::InvalidQuantity,
        RejectReason::InvalidPrice,
        RejectReason::DuplicateOrderId,
        RejectReason::UnknownOrder,
        RejectReason::BookHalted,
        RejectReason::PostOnlyWouldCross,
        RejectReason::PositionLimit,
        RejectReason::InvalidTimeInForce,
        RejectReason::InvalidPostOnly,
        RejectReason::Malformed,
    ]
);
py_names!(
    cancel_name,
    CancelReason,
    [
        CancelReason::User,
        CancelReason::Remainder,
        CancelReason::FokUnfillable,
        CancelReason::SelfTrade,
        CancelReason::Reset
    ]
);
py_names!(status_name, BookStatus, [BookStatus::Halted, BookStatus::Resumed, BookStatus::Reset]);

fn event_kind_name<'py>(py: Python<'py>, kind: &EventKind) -> Bound<'py, PyString> {
    match kind {
        EventKind::Accepted { .. } => intern!(py, "accepted"),
        EventKind::Rejected { .. } => intern!(py, "rejected"),
        EventKind::Trade { .. } => intern!(py, "trade"),
        EventKind::Cancelled { .. } => intern!(py, "cancelled"),
        EventKind::Replaced { .. } => intern!(py, "replaced"),
        EventKind::Level { .. } => intern!(py, "level"),
        EventKind::Status { .. } => intern!(py, "status"),
    }
    .clone()
}

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
fn build_new(
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

// ----- flat fields, for repr / to_dict / hashing -------------------------------------------------

/// One field value of an event, before it becomes a Python object.
#[derive(Clone, Copy)]
enum Value {
    Id(u64),
    Int(i64),
    Bool(bool),
    Side(Side),
    OrderType(OrderType),
    Tif(TimeInForce),
    Reject(RejectReason),
    Cancel(CancelReason),
    Command(CommandKind),
    Status(BookStatus),
}

impl Value {
    fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Value::Id(v) => v.into_pyobject(py)?.into_any(),
            Value::Int(v) => v.into_pyobject(py)?.into_any(),
            Value::Bool(v) => v.into_pyobject(py)?.to_owned().into_any(),
            Value::Side(v) => side_name(py, v).into_any(),
            Value::OrderType(v) => order_type_name(py, v).into_any(),
            Value::Tif(v) => tif_name(py, v).into_any(),
            Value::Reject(v) => reject_name(py, v).into_any(),
            Value::Cancel(v) => cancel_name(py, v).into_any(),
            Value::Command(v) => command_name(py, v).into_any(),
            Value::Status(v) => status_name(py, v).into_any(),
        })
    }
}

/// Python-literal spelling, for `__repr__`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Id(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Side(v) => write!(f, "'{}'", v.as_str()),
            Value::OrderType(v) => write!(f, "'{}'", v.as_str()),
            Value::Tif(v) => write!(f, "'{}'", v.as_str()),
            Value::Reject(v) => write!(f, "'{}'", v.as_str()),
            Value::Cancel(v) => write!(f, "'{}'", v.as_str()),
            Value::Command(v) => write!(f, "'{}'", v.as_str()),
            Value::Status(v) => write!(f, "'{}'", v.as_str()),
        }
    }
}

/// The event attribute names (other than `seq` and `kind`), with interned Python spellings.
macro_rules! fields {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        #[derive(Clone, Copy)]
        enum Field { $($variant),+ }
        impl Field {
            fn name(self) -> &'static str {
                match self { $(Field::$variant => $name),+ }
            }
            fn py_name(self, py: Python<'_>) -> &Bound<'_, PyString> {
                match self { $(Field::$variant => intern!(py, $name)),+ }
            }
        }
    };
}

fields! {
    OrderId => "order_id",
    Account => "account",
    Side => "side",
    OrderType => "order_type",
    Tif => "tif",
    Price => "price",
    Qty => "qty",
    PostOnly => "post_only",
    Reason => "reason",
    Command => "command",
    MakerOrderId => "maker_order_id",
    MakerAccount => "maker_account",
    TakerOrderId => "taker_order_id",
    TakerAccount => "taker_account",
    Aggressor => "aggressor",
    MakerRemaining => "maker_remaining",
    TakerRemaining => "taker_remaining",
    OldPrice => "old_price",
    OldQty => "old_qty",
    KeptPriority => "kept_priority",
    Status => "status",
    ClientRef => "client_ref",
}

/// Calls `f` with each attribute that applies to this kind of event, in a fixed order.
fn visit_fields<E>(kind: &EventKind, mut f: impl FnMut(Field, Value) -> Result<(), E>) -> Result<(), E> {
    use Field as F;
    use Value as V;
    match *kind {
        EventKind::Accepted { order_id, account, side, order_type, tif, price, qty, post_only, client_ref } => {
            f(F::OrderId, V::Id(order_id))?;
            f(F::Account, V::Id(account))?;
            f(F::Side, V::Side(side))?;
            f(F::OrderType, V::OrderType(order_type))?;
            f(F::Tif, V::Tif(tif))?;
            f(F::Price, V::Int(price))?;
            f(F::Qty, V::Int(qty))?;
            f(F::PostOnly, V::Bool(post_only))?;
            f(F::ClientRef, V::Id(client_ref))
        }
        EventKind::Rejected { order_id, account, command, reason, client_ref } => {
            f(F::OrderId, V::Id(order_id))?;
            f(F::Account, V::Id(account))?;
            f(F::Command, V::Command(command))?;
            f(F::Reason, V::Reject(reason))?;
            f(F::ClientRef, V::Id(client_ref))
        }
        EventKind::Trade {
            maker_order_id,
            maker_account,
            taker_order_id,
            taker_account,
            price,
            qty,
            aggressor,
            maker_remaining,
            taker_remaining,
        } => {
            f(F::MakerOrderId, V::Id(maker_order_id))?;
            f(F::MakerAccount, V::Id(maker_account))?;
            f(F::TakerOrderId, V::Id(taker_order_id))?;
            f(F::TakerAccount, V::Id(taker_account))?;
            f(F::Price, V::Int(price))?;
            f(F::Qty, V::Int(qty))?;
            f(F::Aggressor, V::Side(aggressor))?;
            f(F::MakerRemaining, V::Int(maker_remaining))?;
            f(F::TakerRemaining, V::Int(taker_remaining))
        }
        EventKind::Cancelled { order_id, account, side, price, qty, reason } => {
            f(F::OrderId, V::Id(order_id))?;
            f(F::Account, V::Id(account))?;
            f(F::Side, V::Side(side))?;
            f(F::Price, V::Int(price))?;
            f(F::Qty, V::Int(qty))?;
            f(F::Reason, V::Cancel(reason))
        }
        EventKind::Replaced { order_id, account, side, old_price, old_qty, price, qty, kept_priority } => {
            f(F::OrderId, V::Id(order_id))?;
            f(F::Account, V::Id(account))?;
            f(F::Side, V::Side(side))?;
            f(F::OldPrice, V::Int(old_price))?;
            f(F::OldQty, V::Int(old_qty))?;
            f(F::Price, V::Int(price))?;
            f(F::Qty, V::Int(qty))?;
            f(F::KeptPriority, V::Bool(kept_priority))
        }
        EventKind::Level { side, price, qty } => {
            f(F::Side, V::Side(side))?;
            f(F::Price, V::Int(price))?;
            f(F::Qty, V::Int(qty))
        }
        EventKind::Status { status } => f(F::Status, V::Status(status)),
    }
}

/// Feeds `Debug` output into a hasher without allocating: equal values hash equal, and these plain
/// `Copy` types print every field.
fn hash_debug(value: &impl fmt::Debug, state: &mut impl Hasher) {
    struct HashWriter<'a, H: Hasher>(&'a mut H);
    impl<H: Hasher> fmt::Write for HashWriter<'_, H> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let _ = write!(HashWriter(state), "{value:?}");
}

// ----- Event -----------------------------------------------------------------------------------

// No `freelist`: PyO3 0.30's free list takes a mutex per allocation and per free, which costs more
// than CPython's own small-object allocator saves.
/// One engine event, numbered by the book's gap-free sequence. Attributes that do not apply to
/// the event's kind are None.
#[pyclass(module = "flashbook_engine", name = "Event", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PyEvent {
    inner: Event,
}

// SAFETY: only plain Rust data inside.
unsafe impl PlainData for PyEvent {}

impl Hash for PyEvent {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_debug(&self.inner, state);
    }
}

/// The `#[pymethods]` block of `Event`, with one getter per flat attribute: `values` getters return
/// the field as an int or bool, `names` getters return an interned enum name; both None for event
/// kinds without that field. (`#[pymethods]` does not expand macros inside itself, hence the
/// macro around the whole block.)
macro_rules! event_pymethods {
    (
        values { $($vname:ident -> $vty:ty { $($vpat:pat => $vval:expr),+ $(,)? })* }
        names { $($nname:ident { $($npat:pat => $nfn:ident($nval:expr)),+ $(,)? })* }
        methods { $($methods:tt)* }
    ) => {
        #[pymethods]
        impl PyEvent {
            $(
                #[getter]
                fn $vname(&self) -> Option<$vty> {
                    match self.inner.kind {
                        $($vpat => Some($vval),)+
                        _ => None,
                    }
                }
            )*
            $(
                #[getter]
                fn $nname<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
                    match self.inner.kind {
                        $($npat => Some($nfn(py, $nval)),)+
                        _ => None,
                    }
                }
            )*
            $($methods)*
        }
    };
}

event_pymethods! {
    values {
        order_id -> OrderId {
            EventKind::Accepted { order_id, .. }
            | EventKind::Rejected { order_id, .. }
            | EventKind::Cancelled { order_id, .. }
            | EventKind::Replaced { order_id, .. } => order_id,
        }
        account -> AccountId {
            EventKind::Accepted { account, .. }
            | EventKind::Rejected { account, .. }
            | EventKind::Cancelled { account, .. }
            | EventKind::Replaced { account, .. } => account,
        }
        price -> Price {
            EventKind::Accepted { price, .. }
            | EventKind::Trade { price, .. }
            | EventKind::Cancelled { price, .. }
            | EventKind::Replaced { price, .. }
            | EventKind::Level { price, .. } => price,
        }
        qty -> Qty {
            EventKind::Accepted { qty, .. }
            | EventKind::Trade { qty, .. }
            | EventKind::Cancelled { qty, .. }
            | EventKind::Replaced { qty, .. }
            | EventKind::Level { qty, .. } => qty,
        }
        post_only -> bool { EventKind::Accepted { post_only, .. } => post_only }
        client_ref -> u64 { EventKind::Accepted { client_ref, .. } | EventKind::Rejected { client_ref, .. } => client_ref }
        maker_order_id -> OrderId { EventKind::Trade { maker_order_id, .. } => maker_order_id }
        maker_account -> AccountId { EventKind::Trade { maker_account, .. } => maker_account }
        taker_order_id -> OrderId { EventKind::Trade { taker_order_id, .. } => taker_order_id }
        taker_account -> AccountId { EventKind::Trade { taker_account, .. } => taker_account }
        maker_remaining -> Qty { EventKind::Trade { maker_remaining, .. } => maker_remaining }
        taker_remaining -> Qty { EventKind::Trade { taker_remaining, .. } => taker_remaining }
        old_price -> Price { EventKind::Replaced { old_price, .. } => old_price }
        old_qty -> Qty { EventKind::Replaced { old_qty, .. } => old_qty }
        kept_priority -> bool { EventKind::Replaced { kept_priority, .. } => kept_priority }
    }
    names {
        side {
            EventKind::Accepted { side, .. }
            | EventKind::Cancelled { side, .. }
            | EventKind::Replaced { side, .. }
            | EventKind::Level { side, .. } => side_name(side),
        }
        order_type { EventKind::Accepted { order_type, .. } => order_type_name(order_type) }
        tif { EventKind::Accepted { tif, .. } => tif_name(tif) }
        reason {
            EventKind::Rejected { reason, .. } => reject_name(reason),
            EventKind::Cancelled { reason, .. } => cancel_name(reason),
        }
        command { EventKind::Rejected { command, .. } => command_name(command) }
        aggressor { EventKind::Trade { aggressor, .. } => side_name(aggressor) }
        status { EventKind::Status { status } => status_name(status) }
    }
    methods {
        #[getter]
        fn seq(&self) -> Seq {
            self.inner.seq
        }

        /// "accepted", "rejected", "trade", "cancelled", "replaced", "level" or "status".
        #[getter]
        fn kind<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
            event_kind_name(py, &self.inner.kind)
        }

        /// `seq`, `kind` and the attributes that apply to this kind (no None values).
        #[pyo3(name = "to_dict")]
        fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let dict = PyDict::new(py);
            dict.set_item(intern!(py, "seq"), self.inner.seq)?;
            dict.set_item(intern!(py, "kind"), event_kind_name(py, &self.inner.kind))?;
            visit_fields(&self.inner.kind, |field, value| dict.set_item(field.py_name(py), value.to_py(py)?))?;
            Ok(dict)
        }

        fn __repr__(&self) -> String {
            let mut out = format!("Event(seq={}, kind='{}'", self.inner.seq, self.inner.kind.name());
            let _ = visit_fields(&self.inner.kind, |field, value| write!(out, ", {}={}", field.name(), value));
            out.push(')');
            out
        }
    }
}

// ----- Command ---------------------------------------------------------------------------------

/// One command for `OrderBook.submit` / `submit_many`, built with the static constructors
/// (`Command.new`, `.market`, `.cancel`, `.replace`, `.halt`, `.resume`, `.reset`).
#[pyclass(module = "flashbook_engine", name = "Command", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PyCommand {
    inner: Command,
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

    /// "new", "cancel", "replace", "halt", "resume" or "reset".
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        command_name(py, self.inner.kind())
    }

    #[getter]
    fn order_id(&self) -> Option<OrderId> {
        match self.inner {
            Command::New(order) => Some(order.order_id),
            Command::Cancel { order_id, .. } | Command::Replace { order_id, .. } => Some(order_id),
            Command::Halt | Command::Resume | Command::Reset => None,
        }
    }

    #[getter]
    fn account(&self) -> Option<AccountId> {
        match self.inner {
            Command::New(order) => Some(order.account),
            Command::Cancel { account, .. } | Command::Replace { account, .. } => Some(account),
            Command::Halt | Command::Resume | Command::Reset => None,
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

    /// The limit price of a NEW limit order or the new price of a REPLACE, else None.
    #[getter]
    fn price(&self) -> Option<Price> {
        match self.inner {
            Command::New(order) if order.order_type == OrderType::Limit => Some(order.price),
            Command::Replace { price, .. } => price,
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
            Command::Cancel { order_id, account } => format!("Command.cancel({order_id}, {account})"),
            Command::Replace { order_id, account, price, qty } => {
                format!("Command.replace({order_id}, {account}, price={}, qty={})", optional(price), optional(qty))
            }
            Command::Halt => "Command.halt()".to_owned(),
            Command::Resume => "Command.resume()".to_owned(),
            Command::Reset => "Command.reset()".to_owned(),
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

// ----- small value objects ---------------------------------------------------------------------

/// Best bid and offer: `(price, qty)` per side, None when that side is empty.
#[pyclass(module = "flashbook_engine", name = "Bbo", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyBbo {
    #[pyo3(get)]
    bid: Option<(Price, Qty)>,
    #[pyo3(get)]
    ask: Option<(Price, Qty)>,
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

// ----- OrderBook -------------------------------------------------------------------------------

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
    /// replays of a journal that must reach the worker's state.
    fn apply_entry<'py>(&mut self, py: Python<'py>, fields: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let owned = entry_fields(fields)?;
        let pairs: Vec<(&[u8], &[u8])> = owned.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        self.scratch.clear();
        crate::journal::apply_entry(&mut self.book, &pairs, &mut self.scratch);
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

// ----- journal, event lines and the worker ----------------------------------------------------------

fn bytes_of(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_str()?.as_bytes().to_vec());
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!("journal field keys and values must be str or bytes, not {}", value.get_type().name()?)))
}

/// A journal entry's fields from a mapping or an iterable of `(key, value)` pairs.
fn entry_fields(fields: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let items = match fields.cast::<PyDict>() {
        Ok(dict) => dict.items().into_any(),
        Err(_) => fields.clone(),
    };
    let mut owned = Vec::new();
    for item in items.try_iter()? {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        owned.push((bytes_of(&key)?, bytes_of(&value)?));
    }
    Ok(owned)
}

/// Parses event lines as the worker writes them (an event stream entry's `e` field, a reply, the
/// event lines of a market-data message) into `Event` objects.
#[pyfunction]
fn decode_events<'py>(py: Python<'py>, text: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    let raw = bytes_of(text)?;
    let text = std::str::from_utf8(&raw).map_err(|_| PyValueError::new_err("event lines are not UTF-8"))?;
    let events = crate::codec::decode_events(text).map_err(PyValueError::new_err)?;
    PyList::new(py, events.into_iter().map(|inner| Untracked(PyEvent { inner })))
}

/// The journal stream fields of a command, as `(field, value)` string pairs ready for `XADD`.
#[pyfunction]
fn command_fields(command: &Bound<'_, PyCommand>) -> Vec<(&'static str, String)> {
    crate::codec::encode_command(&command.get().inner)
}

/// Runs the engine worker until SIGINT/SIGTERM (or until every journal is drained, with
/// `exit_when_drained`), with the GIL released. Returns one report per symbol.
#[pyfunction]
#[pyo3(signature = (redis_url, prefix, symbols, *, batch_size = 2000, block_ms = 200, snapshot_every = 100_000,
    snapshot_interval = 30.0, book_interval_ms = 50, book_levels = 20, reply_ttl_ms = 30_000, exit_when_drained = false))]
#[allow(clippy::too_many_arguments)]
fn run_worker<'py>(
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
) -> PyResult<Bound<'py, PyList>> {
    use crate::error::WorkerError;
    use crate::worker::{run_blocking, WorkerConfig};
    if !(snapshot_interval.is_finite() && snapshot_interval > 0.0) {
        return Err(PyValueError::new_err("snapshot_interval must be a positive number of seconds"));
    }
    let mut config = WorkerConfig::new(redis_url, prefix, symbols);
    config.batch_size = batch_size;
    config.block_ms = block_ms;
    config.snapshot_every = snapshot_every.max(1);
    config.snapshot_interval = std::time::Duration::from_secs_f64(snapshot_interval);
    config.book_interval = std::time::Duration::from_millis(book_interval_ms);
    config.book_levels = book_levels;
    config.reply_ttl_ms = reply_ttl_ms;
    config.exit_when_drained = exit_when_drained;
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

// ----- module ----------------------------------------------------------------------------------

/// Flashbook's Rust matching engine (compiled extension; import it as `flashbook_engine`).
#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOrderBook>()?;
    m.add_class::<PyEvent>()?;
    m.add_class::<PyCommand>()?;
    m.add_class::<PyBbo>()?;
    m.add_class::<PyRestingOrder>()?;
    m.add_class::<PyExposure>()?;
    m.add_function(wrap_pyfunction!(decode_events, m)?)?;
    m.add_function(wrap_pyfunction!(command_fields, m)?)?;
    m.add_function(wrap_pyfunction!(run_worker, m)?)?;
    m.add("SnapshotError", m.py().get_type::<SnapshotError>())?;
    m.add("MAX_PRICE", MAX_PRICE)?;
    m.add("MAX_QTY", MAX_QTY)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
