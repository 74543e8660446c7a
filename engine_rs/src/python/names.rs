//! Engine enums on their way out to Python: interned strings spelled exactly like each enum's
//! `as_str`, so an attribute read allocates nothing.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use crate::types::*;

/// Interned Python strings for an engine enum, spelled by its `as_str`, indexed by discriminant.
/// The variant list is checked at compile time: complete (an exhaustive match) and in
/// discriminant order.
macro_rules! py_names {
    ($fn_name:ident, $ty:ty, [$($variant:path),+ $(,)?]) => {
        pub(super) fn $fn_name(py: Python<'_>, value: $ty) -> Bound<'_, PyString> {
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
        CommandKind::Reset,
        CommandKind::Band,
        CommandKind::Volatility,
        CommandKind::Fees,
        CommandKind::Clock
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
        RejectReason::PriceOutOfBand,
        RejectReason::InvalidBand,
        RejectReason::VolatilityPause,
        RejectReason::InvalidVolatility,
        RejectReason::InvalidFees,
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
        CancelReason::Reset,
        CancelReason::PriceBand
    ]
);
py_names!(
    status_name,
    BookStatus,
    [
        BookStatus::Halted,
        BookStatus::Resumed,
        BookStatus::Reset,
        BookStatus::Band,
        BookStatus::Paused,
        BookStatus::PauseEnded,
        BookStatus::Volatility,
        BookStatus::Fees
    ]
);

pub(super) fn event_kind_name<'py>(py: Python<'py>, kind: &EventKind) -> Bound<'py, PyString> {
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
