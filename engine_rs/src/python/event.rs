//! `Event`: one engine event as a frozen Python value, its flat attributes computed on access.

use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::names::*;
use super::plain_data::{hash_debug, PlainData};
use crate::types::*;

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
    MakerFeeBps => "maker_fee_bps",
    TakerFeeBps => "taker_fee_bps",
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
            maker_fee_bps,
            taker_fee_bps,
        } => {
            f(F::MakerOrderId, V::Id(maker_order_id))?;
            f(F::MakerAccount, V::Id(maker_account))?;
            f(F::TakerOrderId, V::Id(taker_order_id))?;
            f(F::TakerAccount, V::Id(taker_account))?;
            f(F::Price, V::Int(price))?;
            f(F::Qty, V::Int(qty))?;
            f(F::Aggressor, V::Side(aggressor))?;
            f(F::MakerRemaining, V::Int(maker_remaining))?;
            f(F::TakerRemaining, V::Int(taker_remaining))?;
            f(F::MakerFeeBps, V::Int(maker_fee_bps.into()))?;
            f(F::TakerFeeBps, V::Int(taker_fee_bps.into()))
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

// No `freelist`: PyO3 0.30's free list takes a mutex per allocation and per free, which costs more
// than CPython's own small-object allocator saves.
/// One engine event, numbered by the book's gap-free sequence. Attributes that do not apply to
/// the event's kind are None.
#[pyclass(module = "flashbook_engine", name = "Event", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PyEvent {
    pub(super) inner: Event,
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
        maker_fee_bps -> i32 { EventKind::Trade { maker_fee_bps, .. } => maker_fee_bps }
        taker_fee_bps -> i32 { EventKind::Trade { taker_fee_bps, .. } => taker_fee_bps }
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
