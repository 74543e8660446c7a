//! The engine's vocabulary: commands in, events out.
//!
//! Prices are integer ticks and quantities integer lots. Nothing here is a float: the instrument's
//! tick and lot sizes turn them into decimals at the edges (API, UI), never inside the engine.

use serde::{Deserialize, Serialize};

/// A price in ticks of the instrument. Valid prices are strictly positive.
pub type Price = i64;
/// A quantity in lots. Valid order quantities are strictly positive.
pub type Qty = i64;
/// Exchange-assigned order id. Strictly increasing per book (see [`RejectReason::DuplicateOrderId`]).
pub type OrderId = u64;
/// The account that owns an order; positions and self-trade prevention are per account.
pub type AccountId = u64;
/// Per-book event sequence number: gap-free, starting at 1.
pub type Seq = u64;

/// Largest accepted price: 2^53 - 1, so every price survives a trip through a JSON number (and a
/// JavaScript client) exactly.
pub const MAX_PRICE: Price = (1 << 53) - 1;
/// Largest accepted quantity: 2^40 - 1 (about 10^12 lots). Sums of quantities at a level or in an
/// account cannot approach i64::MAX before millions of maximum-size orders rest at once.
pub const MAX_QTY: Qty = (1 << 40) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Side {
    Buy = 0,
    Sell = 1,
}

impl Side {
    #[inline]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum OrderType {
    Limit = 0,
    Market = 1,
}

impl OrderType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Limit => "limit",
            OrderType::Market => "market",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum TimeInForce {
    /// Good till cancelled: a limit remainder rests on the book.
    Gtc = 0,
    /// Immediate or cancel: whatever does not fill at once is cancelled.
    Ioc = 1,
    /// Fill or kill: fills completely at once or does not trade at all.
    Fok = 2,
}

impl TimeInForce {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "gtc",
            TimeInForce::Ioc => "ioc",
            TimeInForce::Fok => "fok",
        }
    }
}

/// Self-trade prevention, decided by the incoming (taker) order when it meets a resting order of
/// the same account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum StpMode {
    /// Self-trades are allowed.
    None = 0,
    /// The incoming order's remainder is cancelled; the resting order stays.
    CancelNewest = 1,
    /// The resting order is cancelled and matching continues.
    CancelOldest = 2,
    /// Both the resting order and the incoming remainder are cancelled.
    CancelBoth = 3,
}

impl StpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StpMode::None => "none",
            StpMode::CancelNewest => "cancel_newest",
            StpMode::CancelOldest => "cancel_oldest",
            StpMode::CancelBoth => "cancel_both",
        }
    }
}

/// A NEW command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub order_id: OrderId,
    pub account: AccountId,
    pub side: Side,
    pub order_type: OrderType,
    pub tif: TimeInForce,
    /// Limit price in ticks; ignored (conventionally 0) for market orders.
    pub price: Price,
    pub qty: Qty,
    pub post_only: bool,
    pub stp: StpMode,
    /// The account's maximum absolute exposure in lots, if any (see [`RejectReason::PositionLimit`]).
    pub max_position: Option<Qty>,
    /// An opaque reference of the producer's (0 for none), echoed in the NEW's `Accepted` or
    /// `Rejected` event so the producer can match the outcome to its own record of the order
    /// before it knows the exchange id. Not kept on the resting order.
    pub client_ref: u64,
}

impl NewOrder {
    /// A plain GTC limit order without STP or position limit — the common case in tests and tools.
    pub fn limit(order_id: OrderId, account: AccountId, side: Side, price: Price, qty: Qty) -> Self {
        NewOrder {
            order_id,
            account,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            price,
            qty,
            post_only: false,
            stp: StpMode::None,
            max_position: None,
            client_ref: 0,
        }
    }

    /// An immediate-or-cancel market order.
    pub fn market(order_id: OrderId, account: AccountId, side: Side, qty: Qty) -> Self {
        NewOrder {
            order_type: OrderType::Market,
            tif: TimeInForce::Ioc,
            price: 0,
            ..NewOrder::limit(order_id, account, side, 0, qty)
        }
    }

    pub fn with_tif(mut self, tif: TimeInForce) -> Self {
        self.tif = tif;
        self
    }
    pub fn with_post_only(mut self) -> Self {
        self.post_only = true;
        self
    }
    pub fn with_stp(mut self, stp: StpMode) -> Self {
        self.stp = stp;
        self
    }
    pub fn with_max_position(mut self, max_position: Qty) -> Self {
        self.max_position = Some(max_position);
        self
    }
    pub fn with_client_ref(mut self, client_ref: u64) -> Self {
        self.client_ref = client_ref;
        self
    }
}

/// Everything that can be sent to a book. The journal's order is the processing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    New(NewOrder),
    /// Cancel a resting order. `account` must own it: an order of another account is unknown.
    Cancel {
        order_id: OrderId,
        account: AccountId,
    },
    /// Change a resting order's price and/or remaining quantity. A same-price decrease keeps queue
    /// priority; a price change or an increase loses it and may trade at the makers' prices.
    Replace {
        order_id: OrderId,
        account: AccountId,
        price: Option<Price>,
        qty: Option<Qty>,
    },
    /// Stop accepting NEW and REPLACE; CANCEL still works.
    Halt,
    Resume,
    /// Cancel every resting order and zero every position; sequence numbers continue.
    Reset,
    /// Set the price band: NEW and REPLACE prices, and market orders' sweeps, stay within `bps`
    /// basis points of the band's reference — the last trade's price, or `reference` before the
    /// first trade (and after a RESET). `bps` 0 turns the band off.
    Band {
        bps: u32,
        reference: Price,
    },
    /// Set the volatility guard: when a trade's price is more than `bps` basis points away from
    /// any trade of the last `window_ms` milliseconds, the book pauses for `pause_ms` — NEW and
    /// REPLACE are refused, CANCEL works — as limit-up/limit-down rules do. `bps` 0 turns it off.
    /// Time is the journal's: see [`OrderBook::advance_clock`](crate::book::OrderBook::advance_clock).
    Volatility {
        bps: u32,
        window_ms: u64,
        pause_ms: u64,
    },
    /// Set the fee rates every later trade carries, in basis points of its value: `maker_bps` for
    /// the resting side (negative: a rebate, never above the taker's fee), `taker_bps` for the
    /// incoming side. The engine only stamps them on trades; money is the recorder's.
    Fees {
        maker_bps: i32,
        taker_bps: i32,
    },
    /// The journal's clock ticked: nothing but time passes. Applied through
    /// [`apply_entry`](crate::journal::apply_entry), which moves the book's clock to the entry's
    /// time first — so it ends a volatility pause that is over on a journal nobody else writes
    /// to. It emits no event of its own (the only command that may emit none).
    Clock,
}

/// The widest band a BAND may set (1000 %): wider is no band at all.
pub const MAX_BAND_BPS: u32 = 100_000;
/// The largest move a VOLATILITY may allow (100 %: a fall cannot be larger).
pub const MAX_VOLATILITY_BPS: u32 = 10_000;
/// The longest window and pause a VOLATILITY may set: a day.
pub const MAX_VOLATILITY_MS: u64 = 86_400_000;
/// The largest fee rate (10 %), and so the largest rebate.
pub const MAX_FEE_BPS: i32 = 1_000;

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::New(_) => CommandKind::New,
            Command::Cancel { .. } => CommandKind::Cancel,
            Command::Replace { .. } => CommandKind::Replace,
            Command::Halt => CommandKind::Halt,
            Command::Resume => CommandKind::Resume,
            Command::Reset => CommandKind::Reset,
            Command::Band { .. } => CommandKind::Band,
            Command::Volatility { .. } => CommandKind::Volatility,
            Command::Fees { .. } => CommandKind::Fees,
            Command::Clock => CommandKind::Clock,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum CommandKind {
    New = 0,
    Cancel = 1,
    Replace = 2,
    Halt = 3,
    Resume = 4,
    Reset = 5,
    Band = 6,
    Volatility = 7,
    Fees = 8,
    Clock = 9,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::New => "new",
            CommandKind::Cancel => "cancel",
            CommandKind::Replace => "replace",
            CommandKind::Halt => "halt",
            CommandKind::Resume => "resume",
            CommandKind::Reset => "reset",
            CommandKind::Band => "band",
            CommandKind::Volatility => "volatility",
            CommandKind::Fees => "fees",
            CommandKind::Clock => "clock",
        }
    }
}

/// Why a command was refused. Machine-readable; the wire form is [`RejectReason::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum RejectReason {
    /// Quantity zero, negative or above [`MAX_QTY`].
    InvalidQuantity = 0,
    /// Limit price zero, negative or above [`MAX_PRICE`].
    InvalidPrice = 1,
    /// Order id not above every id this book has seen. Ids are strictly increasing per book, which
    /// catches every duplicate in O(1) without remembering all ids ever used.
    DuplicateOrderId = 2,
    /// Cancel or replace of an order that is not resting (never existed, already filled or
    /// cancelled, or owned by another account).
    UnknownOrder = 3,
    /// NEW or REPLACE while the book is halted.
    BookHalted = 4,
    /// A post-only order (or a replace of one) that would take liquidity.
    PostOnlyWouldCross = 5,
    /// Worst-case exposure (position + same-side open quantity + order quantity) above the limit.
    PositionLimit = 6,
    /// A market order must be IOC or FOK.
    InvalidTimeInForce = 7,
    /// Post-only is only for GTC limit orders.
    InvalidPostOnly = 8,
    /// A journal entry that could not be decoded into a command (used by the codec and worker).
    Malformed = 9,
    /// A limit price (of a NEW or a REPLACE) outside the price band.
    PriceOutOfBand = 10,
    /// A BAND whose width is above [`MAX_BAND_BPS`] or whose reference is not a valid price.
    InvalidBand = 11,
    /// NEW or REPLACE while the volatility guard pauses the book.
    VolatilityPause = 12,
    /// A VOLATILITY whose move is above [`MAX_VOLATILITY_BPS`], or whose window or pause is zero
    /// or above [`MAX_VOLATILITY_MS`].
    InvalidVolatility = 13,
    /// FEES outside ±[`MAX_FEE_BPS`], a negative taker fee, or a maker rebate above the taker fee.
    InvalidFees = 14,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidQuantity => "INVALID_QUANTITY",
            RejectReason::InvalidPrice => "INVALID_PRICE",
            RejectReason::DuplicateOrderId => "DUPLICATE_ORDER_ID",
            RejectReason::UnknownOrder => "UNKNOWN_ORDER",
            RejectReason::BookHalted => "BOOK_HALTED",
            RejectReason::PostOnlyWouldCross => "POST_ONLY_WOULD_CROSS",
            RejectReason::PositionLimit => "POSITION_LIMIT",
            RejectReason::InvalidTimeInForce => "INVALID_TIME_IN_FORCE",
            RejectReason::InvalidPostOnly => "INVALID_POST_ONLY",
            RejectReason::Malformed => "MALFORMED",
            RejectReason::PriceOutOfBand => "PRICE_OUT_OF_BAND",
            RejectReason::InvalidBand => "INVALID_BAND",
            RejectReason::VolatilityPause => "VOLATILITY_PAUSE",
            RejectReason::InvalidVolatility => "INVALID_VOLATILITY",
            RejectReason::InvalidFees => "INVALID_FEES",
        }
    }
}

/// Why an order (or its remainder) left the book without trading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum CancelReason {
    /// Cancelled by its owner.
    User = 0,
    /// The unfilled remainder of an IOC or market order.
    Remainder = 1,
    /// A FOK order that could not fill completely; it traded nothing.
    FokUnfillable = 2,
    /// Self-trade prevention.
    SelfTrade = 3,
    /// The book was reset.
    Reset = 4,
    /// The rest of a market order that would have traded beyond the price band.
    PriceBand = 5,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "USER",
            CancelReason::Remainder => "REMAINDER",
            CancelReason::FokUnfillable => "FOK_UNFILLABLE",
            CancelReason::SelfTrade => "SELF_TRADE",
            CancelReason::Reset => "RESET",
            CancelReason::PriceBand => "PRICE_BAND",
        }
    }
}

/// Trading state changes announced on the event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum BookStatus {
    Halted = 0,
    Resumed = 1,
    Reset = 2,
    /// A BAND was applied (the band is in the journal entry; the event is its outcome).
    Band = 3,
    /// The volatility guard paused the book (after the trade that moved the price too far).
    Paused = 4,
    /// The volatility pause is over: NEW and REPLACE are accepted again (unless halted).
    PauseEnded = 5,
    /// A VOLATILITY was applied.
    Volatility = 6,
    /// A FEES was applied.
    Fees = 7,
}

impl BookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookStatus::Halted => "HALTED",
            BookStatus::Resumed => "RESUMED",
            BookStatus::Reset => "RESET",
            BookStatus::Band => "BAND",
            BookStatus::Paused => "PAUSED",
            BookStatus::PauseEnded => "PAUSE_ENDED",
            BookStatus::Volatility => "VOLATILITY",
            BookStatus::Fees => "FEES",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A NEW passed every check. Always the first event of an accepted NEW. A market order's
    /// price is reported as 0.
    Accepted {
        order_id: OrderId,
        account: AccountId,
        side: Side,
        order_type: OrderType,
        tif: TimeInForce,
        price: Price,
        qty: Qty,
        post_only: bool,
        client_ref: u64,
    },
    /// A command was refused; nothing else changed. `order_id`/`account` are 0 when the command
    /// had none (HALT, RESUME, RESET never reject, BAND only an invalid one; a malformed entry may
    /// have none); `client_ref`
    /// is the NEW's reference, 0 for other commands.
    Rejected { order_id: OrderId, account: AccountId, command: CommandKind, reason: RejectReason, client_ref: u64 },
    /// A match, always at the maker's (resting order's) price. `*_remaining` are the open
    /// quantities left after this trade.
    Trade {
        maker_order_id: OrderId,
        maker_account: AccountId,
        taker_order_id: OrderId,
        taker_account: AccountId,
        price: Price,
        qty: Qty,
        aggressor: Side,
        maker_remaining: Qty,
        taker_remaining: Qty,
        /// The fee rates in force (the last FEES), in basis points of the trade's value.
        maker_fee_bps: i32,
        taker_fee_bps: i32,
    },
    /// An order, or the remainder of one, left without trading. `qty` is the quantity removed.
    Cancelled { order_id: OrderId, account: AccountId, side: Side, price: Price, qty: Qty, reason: CancelReason },
    /// A REPLACE was applied (possibly to the same price and quantity, which changes nothing).
    Replaced {
        order_id: OrderId,
        account: AccountId,
        side: Side,
        old_price: Price,
        old_qty: Qty,
        price: Price,
        qty: Qty,
        kept_priority: bool,
    },
    /// The aggregate resting quantity at a price level changed; 0 means the level is gone.
    Level { side: Side, price: Price, qty: Qty },
    /// The book was halted, resumed, reset, paused or reopened, or one of its rules set.
    Status { status: BookStatus },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Accepted { .. } => "accepted",
            EventKind::Rejected { .. } => "rejected",
            EventKind::Trade { .. } => "trade",
            EventKind::Cancelled { .. } => "cancelled",
            EventKind::Replaced { .. } => "replaced",
            EventKind::Level { .. } => "level",
            EventKind::Status { .. } => "status",
        }
    }
}

/// One output of the engine, numbered by the book's gap-free sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: Seq,
    pub kind: EventKind,
}

/// Best bid and offer: `(price, aggregate quantity)` per side, `None` when that side is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bbo {
    pub bid: Option<(Price, Qty)>,
    pub ask: Option<(Price, Qty)>,
}

/// Aggregated price levels, best first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    pub bids: Vec<(Price, Qty)>,
    pub asks: Vec<(Price, Qty)>,
}
