//! One symbol's limit order book: price-time priority matching on integer ticks.
//!
//! Storage is built so that a message costs a handful of cache lines and no allocation once the
//! book is warm: orders live in a slab (a `Vec` with a free list) linked into an intrusive FIFO per
//! price level; a hash map finds an order's slot by id, so cancel is O(1); a [`Ladder`] per side
//! finds a level by price and the next-best level in O(1). Accounts' exposure lives in a second
//! slab that resting orders point into, so fills never hash.

use crate::accounts::{Accounts, Exposure};
use crate::ladder::Ladder;
use crate::types::*;
use crate::volatility::{VolatilityGuard, VolatilityWindow};
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

pub(crate) const NIL: u32 = u32::MAX;
/// Stored for "no position limit", so the check is a plain comparison.
pub(crate) const NO_LIMIT: Qty = Qty::MAX;

/// 64 bytes, aligned to a cache line: touching an order anywhere in a large book costs one line,
/// not the two that an unaligned slot straddles (cachegrind on the bench's wide regime: about 15%
/// fewer last-level misses in the engine; see docs/benchmarks.md).
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
pub(crate) struct OrderSlot {
    pub id: OrderId,
    pub account: AccountId,
    pub account_slot: u32,
    pub price: Price,
    /// Open (remaining) quantity.
    pub qty: Qty,
    pub side: Side,
    pub stp: StpMode,
    pub post_only: bool,
    /// The position limit, [`NO_LIMIT`] for none (so the check is a plain comparison).
    pub max_position: Qty,
    /// Whether the order was given a limit: a limit of `Qty::MAX` behaves like none but is still
    /// the order's own (views, snapshots and the state hash tell them apart).
    pub limited: bool,
    prev: u32,
    next: u32,
    level: u32,
}

#[derive(Clone, Copy, Debug)]
struct Level {
    price: Price,
    total: Qty,
    count: u32,
    head: u32,
    tail: u32,
}

/// A resting order as seen from outside the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestingOrder {
    pub order_id: OrderId,
    pub account: AccountId,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub stp: StpMode,
    pub post_only: bool,
    pub max_position: Option<Qty>,
}

/// Where a resting order stands in the queue of its price level: what must trade or leave before
/// it can fill. Only the exchange knows it exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePosition {
    pub order_id: OrderId,
    pub side: Side,
    pub price: Price,
    /// The order's own open quantity.
    pub qty: Qty,
    /// Open quantity of the orders ahead of it at its price (older, so they fill first).
    pub qty_ahead: Qty,
    /// How many orders are ahead of it.
    pub orders_ahead: u32,
    /// The level's whole open quantity and order count, the order included.
    pub level_qty: Qty,
    pub level_orders: u32,
}

/// One price level's queue, oldest first (see [`OrderBook::level_queues`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelQueue {
    pub price: Price,
    pub total: Qty,
    pub count: u32,
    /// `(order id, open quantity)`, oldest first; possibly cut short of `count`.
    pub orders: Vec<(OrderId, Qty)>,
}

/// The incoming side of a match: a NEW or a re-priced REPLACE.
struct Taker {
    order_id: OrderId,
    account: AccountId,
    account_slot: u32,
    side: Side,
    /// Priority key limit on the opposite ladder: levels with a key <= this may trade.
    key_limit: i64,
    remaining: Qty,
    stp: StpMode,
}

/// How a match pass ended when the taker still has quantity.
#[derive(PartialEq, Eq)]
enum MatchEnd {
    /// No more crossing liquidity.
    Exhausted,
    /// Self-trade prevention cancels the taker's remainder.
    SelfTradeStop,
}

pub struct OrderBook {
    symbol: String,
    seq: Seq,
    halted: bool,
    /// Highest order id seen; a NEW must carry a larger one.
    last_order_id: OrderId,
    orders: Vec<OrderSlot>,
    free_orders: Vec<u32>,
    /// Id index: the slab slots of resting orders, hashed by order id. It stores only the 4-byte
    /// slot and compares ids through the slab, so the table is under a third of a `HashMap<u64, u32>`
    /// (16-byte buckets) and stays in cache for books of 100k+ orders, and the slot it leads to is
    /// the one the caller reads next anyway.
    order_slot_of: HashTable<u32>,
    levels: Vec<Level>,
    free_levels: Vec<u32>,
    /// Keyed by the negated price, so the best bid is the smallest key.
    bids: Ladder,
    asks: Ladder,
    pub(crate) accounts: Accounts,
    /// The price band (`Command::Band`): its width in basis points (0: none), the reference it
    /// was given, and the last trade's price (0: none since the start or the last RESET), which
    /// is the band's reference once there is one.
    band_bps: u32,
    band_reference: Price,
    last_trade_price: Price,
    /// The journal's clock (milliseconds), as far as this book has been told
    /// ([`OrderBook::advance_clock`]); it never goes back.
    now_ms: u64,
    volatility: VolatilityGuard,
    /// The fee rates stamped on trades (`Command::Fees`): maker, taker, in basis points.
    fees: (i32, i32),
}

/// Priority key of a price on a side: smaller is better.
#[inline]
fn key_of(side: Side, price: Price) -> i64 {
    match side {
        Side::Buy => -price,
        Side::Sell => price,
    }
}

#[inline]
fn price_of(side: Side, key: i64) -> Price {
    match side {
        Side::Buy => -key,
        Side::Sell => key,
    }
}

impl OrderBook {
    pub fn new(symbol: &str) -> Self {
        Self::with_capacity(symbol, 0)
    }

    /// A book pre-sized for `orders` resting orders, so that it does not reallocate while warming up.
    pub fn with_capacity(symbol: &str, orders: usize) -> Self {
        let order_slot_of = HashTable::with_capacity(orders);
        OrderBook {
            symbol: symbol.to_owned(),
            seq: 0,
            halted: false,
            last_order_id: 0,
            orders: Vec::with_capacity(orders),
            free_orders: Vec::new(),
            order_slot_of,
            levels: Vec::new(),
            free_levels: Vec::new(),
            bids: Ladder::new(),
            asks: Ladder::new(),
            accounts: Accounts::default(),
            band_bps: 0,
            band_reference: 0,
            last_trade_price: 0,
            now_ms: 0,
            volatility: VolatilityGuard::default(),
            fees: (0, 0),
        }
    }

    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// Sequence number of the last event emitted (0 before the first).
    pub fn seq(&self) -> Seq {
        self.seq
    }

    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// The highest order id this book has seen; the next NEW must carry a larger one.
    pub fn last_order_id(&self) -> OrderId {
        self.last_order_id
    }

    pub fn order_count(&self) -> usize {
        self.order_slot_of.len()
    }

    #[inline]
    fn id_hash(order_id: OrderId) -> u64 {
        FxBuildHasher.hash_one(order_id)
    }

    /// The slab slot of the resting order `order_id`, if any.
    #[inline]
    fn slot_of(&self, order_id: OrderId) -> Option<u32> {
        let orders = &self.orders;
        self.order_slot_of.find(Self::id_hash(order_id), |&slot| orders[slot as usize].id == order_id).copied()
    }

    /// The band's width in basis points (0: none), its given reference, and the last trade's price
    /// (0: none), as a snapshot keeps them.
    pub fn band(&self) -> (u32, Price, Price) {
        (self.band_bps, self.band_reference, self.last_trade_price)
    }

    /// The lowest and highest limit prices the band allows now, if there is a band: `bps` basis
    /// points either side of the last trade's price (or, before any, the BAND's reference),
    /// rounded towards the reference, never below one tick.
    #[inline]
    pub fn band_limits(&self) -> Option<(Price, Price)> {
        if self.band_bps == 0 {
            return None;
        }
        let reference = if self.last_trade_price > 0 { self.last_trade_price } else { self.band_reference };
        let width = (i128::from(reference) * i128::from(self.band_bps) / 10_000) as Price;
        Some(((reference - width).max(1), (reference + width).min(MAX_PRICE)))
    }

    /// One comparison with zero when there is no band (the matching path's common case).
    #[inline(always)]
    fn outside_band(&self, price: Price) -> bool {
        self.band_bps != 0 && self.band_limits().is_some_and(|(low, high)| price < low || price > high)
    }

    /// The volatility guard's settings — largest move in basis points (0: off), window and pause
    /// in milliseconds — and when the current pause ends (0: not paused).
    pub fn volatility(&self) -> (u32, u64, u64, u64) {
        let guard = &self.volatility;
        (guard.bps, guard.window_ms, guard.pause_ms, guard.paused_until)
    }

    /// Whether the volatility guard pauses the book now.
    pub fn is_paused(&self) -> bool {
        self.volatility.paused_until != 0
    }

    /// The fee rates trades carry: maker and taker, in basis points.
    pub fn fees(&self) -> (i32, i32) {
        self.fees
    }

    /// The journal's clock as far as this book knows it, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Moves the book's clock to `now_ms` (journal milliseconds; an earlier time is ignored) and
    /// ends a volatility pause that is over, emitting `PAUSE_ENDED`. The worker calls it with each
    /// journal entry's time before applying the entry, and with the journal server's time while
    /// the journal is idle: an entry appended later carries a later time, so a replay ends the
    /// pause at the same place in the sequence.
    pub fn advance_clock(&mut self, now_ms: u64, out: &mut Vec<Event>) {
        self.now_ms = self.now_ms.max(now_ms);
        let until = self.volatility.paused_until;
        if until != 0 && self.now_ms >= until {
            self.volatility.paused_until = 0;
            self.emit(out, EventKind::Status { status: BookStatus::PauseEnded });
        }
    }

    pub fn level_count(&self) -> usize {
        self.bids.len() + self.asks.len()
    }

    /// Applies one command, appending its events (at least one, but none for a CLOCK) to `out`.
    pub fn apply(&mut self, command: &Command, out: &mut Vec<Event>) {
        match *command {
            Command::New(ref order) => {
                self.new_order(order, out);
                self.pause_if_tripped(out);
            }
            Command::Cancel { order_id, account } => self.cancel(order_id, account, out),
            Command::Replace { order_id, account, price, qty } => {
                self.replace(order_id, account, price, qty, out);
                self.pause_if_tripped(out);
            }
            Command::Halt => {
                self.halted = true;
                self.emit(out, EventKind::Status { status: BookStatus::Halted });
            }
            Command::Resume => {
                self.halted = false;
                self.emit(out, EventKind::Status { status: BookStatus::Resumed });
            }
            Command::Reset => self.reset(out),
            Command::Band { bps, reference } => {
                if bps > MAX_BAND_BPS || (bps > 0 && !(1..=MAX_PRICE).contains(&reference)) {
                    return self.reject(out, 0, 0, CommandKind::Band, RejectReason::InvalidBand);
                }
                self.band_bps = bps;
                self.band_reference = reference;
                self.emit(out, EventKind::Status { status: BookStatus::Band });
            }
            Command::Volatility { bps, window_ms, pause_ms } => {
                let valid_ms = |ms: u64| (1..=MAX_VOLATILITY_MS).contains(&ms);
                if bps > MAX_VOLATILITY_BPS || (bps > 0 && !(valid_ms(window_ms) && valid_ms(pause_ms))) {
                    return self.reject(out, 0, 0, CommandKind::Volatility, RejectReason::InvalidVolatility);
                }
                // A pause under way runs its course; the new settings apply to what follows.
                self.volatility.set(bps, window_ms, pause_ms);
                self.emit(out, EventKind::Status { status: BookStatus::Volatility });
            }
            Command::Fees { maker_bps, taker_bps } => {
                if !(0..=MAX_FEE_BPS).contains(&taker_bps) || !(-taker_bps..=MAX_FEE_BPS).contains(&maker_bps) {
                    return self.reject(out, 0, 0, CommandKind::Fees, RejectReason::InvalidFees);
                }
                self.fees = (maker_bps, taker_bps);
                self.emit(out, EventKind::Status { status: BookStatus::Fees });
            }
            Command::Clock => {}
        }
    }

    /// After a NEW or REPLACE whose trades moved the price beyond the volatility guard's limit:
    /// the command has run its course (a FOK filled whole, a remainder rests uncrossed), and the
    /// book pauses now.
    #[inline]
    fn pause_if_tripped(&mut self, out: &mut Vec<Event>) {
        if self.volatility.tripped {
            self.volatility.begin_pause(self.now_ms);
            self.emit(out, EventKind::Status { status: BookStatus::Paused });
        }
    }

    /// Applies one command and returns its events.
    pub fn apply_collect(&mut self, command: &Command) -> Vec<Event> {
        let mut out = Vec::with_capacity(4);
        self.apply(command, &mut out);
        out
    }

    /// Emits a `Rejected` event for a journal entry that could not be decoded into a command. It
    /// takes a sequence number like any event, so the event stream stays gap-free.
    pub fn reject_malformed(
        &mut self,
        order_id: OrderId,
        account: AccountId,
        command: CommandKind,
        client_ref: u64,
        out: &mut Vec<Event>,
    ) {
        // A NEW's id is consumed by its first outcome, even an undecodable one, so an id never
        // names two outcomes in the book's history.
        if command == CommandKind::New && order_id > self.last_order_id {
            self.last_order_id = order_id;
        }
        self.emit(out, EventKind::Rejected { order_id, account, command, reason: RejectReason::Malformed, client_ref });
    }

    #[inline]
    pub(crate) fn emit(&mut self, out: &mut Vec<Event>, kind: EventKind) {
        self.seq += 1;
        out.push(Event { seq: self.seq, kind });
    }

    #[inline]
    fn reject(
        &mut self,
        out: &mut Vec<Event>,
        order_id: OrderId,
        account: AccountId,
        command: CommandKind,
        reason: RejectReason,
    ) {
        self.emit(out, EventKind::Rejected { order_id, account, command, reason, client_ref: 0 });
    }

    // ----- NEW -------------------------------------------------------------------------------

    fn new_order(&mut self, order: &NewOrder, out: &mut Vec<Event>) {
        let reject = |book: &mut Self, out: &mut Vec<Event>, reason| {
            let (order_id, account, client_ref) = (order.order_id, order.account, order.client_ref);
            book.emit(out, EventKind::Rejected { order_id, account, command: CommandKind::New, reason, client_ref })
        };
        // A negative limit is not a limit: through the journal the decoder refuses it before the
        // book sees it (MALFORMED, the id consumed), and the typed API gets the same outcome.
        if order.max_position.is_some_and(|limit| limit < 0) {
            let (order_id, account, client_ref) = (order.order_id, order.account, order.client_ref);
            return self.reject_malformed(order_id, account, CommandKind::New, client_ref, out);
        }
        // The id is checked first and consumed whatever follows, so an id names at most one
        // NEW outcome in the book's whole history.
        if order.order_id <= self.last_order_id {
            return reject(self, out, RejectReason::DuplicateOrderId);
        }
        self.last_order_id = order.order_id;
        if order.qty <= 0 || order.qty > MAX_QTY {
            return reject(self, out, RejectReason::InvalidQuantity);
        }
        let is_limit = order.order_type == OrderType::Limit;
        if is_limit && (order.price <= 0 || order.price > MAX_PRICE) {
            return reject(self, out, RejectReason::InvalidPrice);
        }
        if !is_limit && order.tif == TimeInForce::Gtc {
            return reject(self, out, RejectReason::InvalidTimeInForce);
        }
        if order.post_only && (!is_limit || order.tif != TimeInForce::Gtc) {
            return reject(self, out, RejectReason::InvalidPostOnly);
        }
        if self.halted {
            return reject(self, out, RejectReason::BookHalted);
        }
        if self.volatility.paused_until != 0 {
            return reject(self, out, RejectReason::VolatilityPause);
        }
        if is_limit && self.outside_band(order.price) {
            return reject(self, out, RejectReason::PriceOutOfBand);
        }
        // A market order sweeps up to the band's edge on its side, no further.
        let band_edge = if is_limit || self.band_bps == 0 {
            None
        } else {
            self.band_limits().map(|(low, high)| if order.side == Side::Buy { high } else { low })
        };
        let key_limit = match (is_limit, band_edge) {
            (true, _) => key_of(order.side.opposite(), order.price),
            (false, Some(edge)) => key_of(order.side.opposite(), edge),
            (false, None) => i64::MAX,
        };
        // A market order's price field is meaningless; report 0 rather than echo whatever it held.
        let reported_price = if is_limit { order.price } else { 0 };
        if order.post_only && self.ladder(order.side.opposite()).best().is_some_and(|best| best <= key_limit) {
            return reject(self, out, RejectReason::PostOnlyWouldCross);
        }
        let max_position = order.max_position.unwrap_or(NO_LIMIT);
        let limited = order.max_position.is_some();
        let account_slot = self.accounts.slot(order.account);
        if self.accounts.get(account_slot).exceeds(order.side, order.qty, max_position) {
            return reject(self, out, RejectReason::PositionLimit);
        }

        self.emit(
            out,
            EventKind::Accepted {
                order_id: order.order_id,
                account: order.account,
                side: order.side,
                order_type: order.order_type,
                tif: order.tif,
                price: reported_price,
                qty: order.qty,
                post_only: order.post_only,
                client_ref: order.client_ref,
            },
        );
        let mut taker = Taker {
            order_id: order.order_id,
            account: order.account,
            account_slot,
            side: order.side,
            key_limit,
            remaining: order.qty,
            stp: order.stp,
        };
        if order.tif == TimeInForce::Fok && !self.fok_fillable(&taker) {
            return self.emit(
                out,
                EventKind::Cancelled {
                    order_id: order.order_id,
                    account: order.account,
                    side: order.side,
                    price: reported_price,
                    qty: order.qty,
                    reason: CancelReason::FokUnfillable,
                },
            );
        }
        let end = self.match_taker(&mut taker, out);
        if taker.remaining == 0 {
            return;
        }
        let reason = if end == MatchEnd::SelfTradeStop {
            CancelReason::SelfTrade
        } else if band_edge.is_some() && self.ladder(order.side.opposite()).best().is_some() {
            // Liquidity is left, beyond the band: the band stopped the sweep.
            CancelReason::PriceBand
        } else if order.tif != TimeInForce::Gtc || !is_limit {
            CancelReason::Remainder
        } else {
            let slot = OrderSlot {
                id: order.order_id,
                account: order.account,
                account_slot,
                price: order.price,
                qty: taker.remaining,
                side: order.side,
                stp: order.stp,
                post_only: order.post_only,
                max_position,
                limited,
                prev: NIL,
                next: NIL,
                level: NIL,
            };
            return self.rest(slot, out);
        };
        self.emit(
            out,
            EventKind::Cancelled {
                order_id: order.order_id,
                account: order.account,
                side: order.side,
                price: reported_price,
                qty: taker.remaining,
                reason,
            },
        );
    }

    /// Whether a FOK order would fill completely, counting only liquidity that self-trade
    /// prevention would let it take. Walks orders only when STP is on; levels otherwise.
    fn fok_fillable(&self, taker: &Taker) -> bool {
        let ladder = self.ladder(taker.side.opposite());
        let mut needed = taker.remaining;
        for (key, level_index) in ladder.iter() {
            if key > taker.key_limit {
                return false;
            }
            let level = &self.levels[level_index as usize];
            if taker.stp == StpMode::None {
                needed -= level.total;
            } else {
                let mut cursor = level.head;
                while cursor != NIL {
                    let maker = &self.orders[cursor as usize];
                    if maker.account != taker.account {
                        needed -= maker.qty;
                    } else if taker.stp != StpMode::CancelOldest {
                        return false;
                    }
                    if needed <= 0 {
                        return true;
                    }
                    cursor = maker.next;
                }
            }
            if needed <= 0 {
                return true;
            }
        }
        false
    }

    /// Trades `taker` against the opposite side while prices cross, best level first and oldest
    /// order first within a level, always at the maker's price.
    fn match_taker(&mut self, taker: &mut Taker, out: &mut Vec<Event>) -> MatchEnd {
        let maker_side = taker.side.opposite();
        while taker.remaining > 0 {
            let Some(key) = self.ladder(maker_side).best() else {
                return MatchEnd::Exhausted;
            };
            if key > taker.key_limit {
                return MatchEnd::Exhausted;
            }
            let level_index = self.ladder(maker_side).get(key).expect("best key is occupied");
            let price = price_of(maker_side, key);
            let mut stop = None;
            // A CancelNewest taker that meets its own order first leaves the level as it was:
            // no level event then.
            let mut touched = false;
            let mut traded = false;
            let mut cursor = self.levels[level_index as usize].head;
            while cursor != NIL && taker.remaining > 0 {
                let maker = self.orders[cursor as usize];
                let next = maker.next;
                if maker.account == taker.account && taker.stp != StpMode::None {
                    if taker.stp != StpMode::CancelNewest {
                        touched = true;
                        self.unlink(cursor);
                        self.accounts.release(maker.account_slot, maker.side, maker.qty);
                        self.emit(
                            out,
                            EventKind::Cancelled {
                                order_id: maker.id,
                                account: maker.account,
                                side: maker.side,
                                price: maker.price,
                                qty: maker.qty,
                                reason: CancelReason::SelfTrade,
                            },
                        );
                    }
                    if taker.stp != StpMode::CancelOldest {
                        stop = Some(MatchEnd::SelfTradeStop);
                        break;
                    }
                    cursor = next;
                    continue;
                }
                touched = true;
                let qty = maker.qty.min(taker.remaining);
                taker.remaining -= qty;
                let maker_remaining = maker.qty - qty;
                self.orders[cursor as usize].qty = maker_remaining;
                self.levels[level_index as usize].total -= qty;
                self.accounts.fill_maker(maker.account_slot, maker.side, qty);
                self.accounts.fill_taker(taker.account_slot, taker.side, qty);
                traded = true;
                if maker_remaining == 0 {
                    self.unlink(cursor);
                }
                self.emit(
                    out,
                    EventKind::Trade {
                        maker_order_id: maker.id,
                        maker_account: maker.account,
                        taker_order_id: taker.order_id,
                        taker_account: taker.account,
                        price,
                        qty,
                        aggressor: taker.side,
                        maker_remaining,
                        taker_remaining: taker.remaining,
                        maker_fee_bps: self.fees.0,
                        taker_fee_bps: self.fees.1,
                    },
                );
                cursor = next;
            }
            if touched {
                self.announce_level(maker_side, key, level_index, out);
            }
            if traded {
                self.last_trade_price = price; // once a level, not once a trade
                if self.volatility.bps != 0 {
                    self.volatility.note(self.now_ms, price);
                }
            }
            if let Some(end) = stop {
                return end;
            }
        }
        MatchEnd::Exhausted
    }

    // ----- resting orders ----------------------------------------------------------------------

    #[inline]
    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline]
    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Appends an order at the tail of its price level and announces the level.
    fn rest(&mut self, order: OrderSlot, out: &mut Vec<Event>) {
        let slot = self.insert_resting(order);
        let level = self.orders[slot as usize].level;
        let level = self.levels[level as usize];
        self.emit(out, EventKind::Level { side: order.side, price: order.price, qty: level.total });
    }

    /// Links an order into the book (slab, id index, level FIFO, exposure). No events.
    pub(crate) fn insert_resting(&mut self, mut order: OrderSlot) -> u32 {
        let key = key_of(order.side, order.price);
        let level_index = match self.ladder(order.side).get(key) {
            Some(index) => index,
            None => {
                let level = Level { price: order.price, total: 0, count: 0, head: NIL, tail: NIL };
                let index = match self.free_levels.pop() {
                    Some(index) => {
                        self.levels[index as usize] = level;
                        index
                    }
                    None => {
                        self.levels.push(level);
                        (self.levels.len() - 1) as u32
                    }
                };
                self.ladder_mut(order.side).insert(key, index);
                index
            }
        };
        let tail = self.levels[level_index as usize].tail;
        order.level = level_index;
        order.prev = tail;
        order.next = NIL;
        let slot = match self.free_orders.pop() {
            Some(slot) => {
                self.orders[slot as usize] = order;
                slot
            }
            None => {
                self.orders.push(order);
                (self.orders.len() - 1) as u32
            }
        };
        let level = &mut self.levels[level_index as usize];
        if tail == NIL {
            level.head = slot;
        } else {
            self.orders[tail as usize].next = slot;
        }
        level.tail = slot;
        level.total += order.qty;
        level.count += 1;
        // Ids of resting orders are unique (NEW requires a fresh id, restore validates), so the
        // slot goes in without a lookup; growing re-hashes every resting order's id via the slab.
        let orders = &self.orders;
        self.order_slot_of.insert_unique(Self::id_hash(order.id), slot, |&s| Self::id_hash(orders[s as usize].id));
        self.accounts.hold(order.account_slot, order.side, order.qty);
        slot
    }

    /// Unlinks an order from its level FIFO, the id index and the slab. The level's total is
    /// reduced by the order's open quantity; an emptied level stays in the ladder until
    /// [`Self::announce_level`] retires it. Exposure is the caller's business.
    fn unlink(&mut self, slot: u32) {
        let id = self.orders[slot as usize].id;
        // Before the slot goes back on the free list: the index finds it through its id.
        let orders = &self.orders;
        if let Ok(entry) = self.order_slot_of.find_entry(Self::id_hash(id), |&s| orders[s as usize].id == id) {
            entry.remove();
        }
        self.unlink_unindexed(slot);
    }

    /// [`Self::unlink`] for an order already taken out of the id index.
    fn unlink_unindexed(&mut self, slot: u32) {
        let order = self.orders[slot as usize];
        let level = &mut self.levels[order.level as usize];
        if order.prev == NIL {
            level.head = order.next;
        } else {
            self.orders[order.prev as usize].next = order.next;
        }
        if order.next == NIL {
            level.tail = order.prev;
        } else {
            self.orders[order.next as usize].prev = order.prev;
        }
        let level = &mut self.levels[order.level as usize];
        level.total -= order.qty;
        level.count -= 1;
        self.free_orders.push(slot);
    }

    /// Emits the level's new aggregate quantity and retires the level if it is empty.
    fn announce_level(&mut self, side: Side, key: i64, level_index: u32, out: &mut Vec<Event>) {
        let level = self.levels[level_index as usize];
        if level.count == 0 {
            self.ladder_mut(side).remove(key);
            self.free_levels.push(level_index);
        }
        self.emit(out, EventKind::Level { side, price: level.price, qty: level.total });
    }

    /// Finds a resting order of `account`; another account's order is as good as unknown.
    fn owned_slot(&self, order_id: OrderId, account: AccountId) -> Option<u32> {
        let slot = self.slot_of(order_id)?;
        (self.orders[slot as usize].account == account).then_some(slot)
    }

    // ----- CANCEL / REPLACE ----------------------------------------------------------------------

    /// Takes a resting order of `account` out of the id index, returning its slot: one probe
    /// where finding it and then unlinking it would take two.
    fn take_owned(&mut self, order_id: OrderId, account: AccountId) -> Option<u32> {
        let orders = &self.orders;
        let entry =
            self.order_slot_of.find_entry(Self::id_hash(order_id), |&s| orders[s as usize].id == order_id).ok()?;
        let slot = *entry.get();
        if self.orders[slot as usize].account != account {
            return None;
        }
        entry.remove();
        Some(slot)
    }

    fn cancel(&mut self, order_id: OrderId, account: AccountId, out: &mut Vec<Event>) {
        let Some(slot) = self.take_owned(order_id, account) else {
            return self.reject(out, order_id, account, CommandKind::Cancel, RejectReason::UnknownOrder);
        };
        let order = self.orders[slot as usize];
        self.unlink_unindexed(slot);
        self.accounts.release(order.account_slot, order.side, order.qty);
        self.emit(
            out,
            EventKind::Cancelled {
                order_id,
                account,
                side: order.side,
                price: order.price,
                qty: order.qty,
                reason: CancelReason::User,
            },
        );
        self.announce_level(order.side, key_of(order.side, order.price), order.level, out);
    }

    fn replace(
        &mut self,
        order_id: OrderId,
        account: AccountId,
        price: Option<Price>,
        qty: Option<Qty>,
        out: &mut Vec<Event>,
    ) {
        let reject = |book: &mut Self, out: &mut Vec<Event>, reason| {
            book.reject(out, order_id, account, CommandKind::Replace, reason)
        };
        // Neither a price nor a quantity: the journal's decoder refuses such an entry as
        // MALFORMED whatever the book's state, and so does the typed API.
        if price.is_none() && qty.is_none() {
            return reject(self, out, RejectReason::Malformed);
        }
        if self.halted {
            return reject(self, out, RejectReason::BookHalted);
        }
        if self.volatility.paused_until != 0 {
            return reject(self, out, RejectReason::VolatilityPause);
        }
        let Some(slot) = self.owned_slot(order_id, account) else {
            return reject(self, out, RejectReason::UnknownOrder);
        };
        let order = self.orders[slot as usize];
        let new_price = price.unwrap_or(order.price);
        let new_qty = qty.unwrap_or(order.qty);
        if new_qty <= 0 || new_qty > MAX_QTY {
            return reject(self, out, RejectReason::InvalidQuantity);
        }
        if new_price <= 0 || new_price > MAX_PRICE {
            return reject(self, out, RejectReason::InvalidPrice);
        }
        // A new price must be inside the band; an order the band has moved away from may still
        // be reduced at its price.
        if new_price != order.price && self.outside_band(new_price) {
            return reject(self, out, RejectReason::PriceOutOfBand);
        }
        let replaced = |kept_priority| EventKind::Replaced {
            order_id,
            account,
            side: order.side,
            old_price: order.price,
            old_qty: order.qty,
            price: new_price,
            qty: new_qty,
            kept_priority,
        };
        let key = key_of(order.side, order.price);

        if new_price == order.price && new_qty <= order.qty {
            // Shrinking in place keeps the order's place in the queue.
            let cut = order.qty - new_qty;
            self.orders[slot as usize].qty = new_qty;
            self.levels[order.level as usize].total -= cut;
            self.accounts.release(order.account_slot, order.side, cut);
            self.emit(out, replaced(true));
            if cut > 0 {
                self.announce_level(order.side, key, order.level, out);
            }
            return;
        }

        let key_limit = key_of(order.side.opposite(), new_price);
        let crosses = self.ladder(order.side.opposite()).best().is_some_and(|best| best <= key_limit);
        if order.post_only && crosses {
            return reject(self, out, RejectReason::PostOnlyWouldCross);
        }
        if new_qty > order.qty {
            let exposure_without = self.accounts.get(order.account_slot).without_open(order.side, order.qty);
            if exposure_without.exceeds(order.side, new_qty, order.max_position) {
                return reject(self, out, RejectReason::PositionLimit);
            }
        }

        self.unlink(slot);
        self.accounts.release(order.account_slot, order.side, order.qty);
        self.emit(out, replaced(false));
        if new_price != order.price {
            self.announce_level(order.side, key, order.level, out);
        } else if self.levels[order.level as usize].count == 0 {
            // Same price, larger quantity, and it was alone: the level is re-created by `rest`
            // below, so retire it silently rather than announce a transient zero.
            self.ladder_mut(order.side).remove(key);
            self.free_levels.push(order.level);
        }
        let mut taker = Taker {
            order_id,
            account,
            account_slot: order.account_slot,
            side: order.side,
            key_limit,
            remaining: new_qty,
            stp: order.stp,
        };
        if crosses && self.match_taker(&mut taker, out) == MatchEnd::SelfTradeStop {
            return self.emit(
                out,
                EventKind::Cancelled {
                    order_id,
                    account,
                    side: order.side,
                    price: new_price,
                    qty: taker.remaining,
                    reason: CancelReason::SelfTrade,
                },
            );
        }
        if taker.remaining > 0 {
            self.rest(OrderSlot { price: new_price, qty: taker.remaining, ..order }, out);
        }
    }

    // ----- RESET -----------------------------------------------------------------------------

    fn reset(&mut self, out: &mut Vec<Event>) {
        for side in [Side::Buy, Side::Sell] {
            let levels: Vec<(i64, u32)> = self.ladder(side).iter().collect();
            for (_, level_index) in levels {
                let mut cursor = self.levels[level_index as usize].head;
                while cursor != NIL {
                    let order = self.orders[cursor as usize];
                    self.emit(
                        out,
                        EventKind::Cancelled {
                            order_id: order.id,
                            account: order.account,
                            side: order.side,
                            price: order.price,
                            qty: order.qty,
                            reason: CancelReason::Reset,
                        },
                    );
                    cursor = order.next;
                }
                let price = self.levels[level_index as usize].price;
                self.emit(out, EventKind::Level { side, price, qty: 0 });
            }
        }
        self.clear_book();
        // A new session: the band is about its given reference again, not the old last trade, and
        // the volatility guard forgets the old session's trades and any pause.
        self.last_trade_price = 0;
        self.volatility.forget();
        self.volatility.paused_until = 0;
        self.emit(out, EventKind::Status { status: BookStatus::Reset });
    }

    /// Drops every order, level and account; keeps symbol, sequence, halt state and id high-water.
    pub(crate) fn clear_book(&mut self) {
        self.orders.clear();
        self.free_orders.clear();
        self.order_slot_of.clear();
        self.levels.clear();
        self.free_levels.clear();
        self.bids.clear();
        self.asks.clear();
        self.accounts.clear();
    }

    // ----- views -----------------------------------------------------------------------------

    pub fn bbo(&self) -> Bbo {
        let top = |side: Side| {
            let ladder = self.ladder(side);
            let key = ladder.best()?;
            let level = &self.levels[ladder.get(key)? as usize];
            Some((level.price, level.total))
        };
        Bbo { bid: top(Side::Buy), ask: top(Side::Sell) }
    }

    /// The best `levels` aggregated price levels per side, best first.
    pub fn depth(&self, levels: usize) -> Depth {
        let side_depth = |side: Side| -> Vec<(Price, Qty)> {
            self.ladder(side)
                .iter()
                .take(levels)
                .map(|(_, index)| {
                    let level = &self.levels[index as usize];
                    (level.price, level.total)
                })
                .collect()
        };
        Depth { bids: side_depth(Side::Buy), asks: side_depth(Side::Sell) }
    }

    pub fn order(&self, order_id: OrderId) -> Option<RestingOrder> {
        let slot = self.slot_of(order_id)?;
        Some(self.view(&self.orders[slot as usize]))
    }

    fn view(&self, order: &OrderSlot) -> RestingOrder {
        RestingOrder {
            order_id: order.id,
            account: order.account,
            side: order.side,
            price: order.price,
            qty: order.qty,
            stp: order.stp,
            post_only: order.post_only,
            max_position: order.limited.then_some(order.max_position),
        }
    }

    /// Every resting order in priority order: bids best to worst, then asks best to worst, each
    /// level oldest first.
    pub fn resting_orders(&self) -> Vec<RestingOrder> {
        let mut all = Vec::with_capacity(self.order_count());
        for side in [Side::Buy, Side::Sell] {
            for (_, level_index) in self.ladder(side).iter() {
                let mut cursor = self.levels[level_index as usize].head;
                while cursor != NIL {
                    let order = &self.orders[cursor as usize];
                    all.push(self.view(order));
                    cursor = order.next;
                }
            }
        }
        all
    }

    /// Where the resting order `order_id` stands in its level's queue (None: not resting).
    ///
    /// The level is a doubly-linked FIFO, and the walk goes both ways from the order at once: it
    /// stops when either end is reached, and the level's running totals (kept for the L2 book)
    /// give the other side. So it costs O(min(orders ahead, orders behind)) slab reads — nothing
    /// for the head or the tail of a queue, half the level at worst — and nothing on the matching
    /// path: no per-order bookkeeping is added to keep it (`docs/architecture.md`).
    pub fn queue_position(&self, order_id: OrderId) -> Option<QueuePosition> {
        let slot = self.slot_of(order_id)?;
        let order = &self.orders[slot as usize];
        let level = &self.levels[order.level as usize];
        let (mut back, mut front) = (order.prev, order.next);
        let (mut qty_ahead, mut orders_ahead, mut qty_behind, mut orders_behind) = (0, 0u32, 0, 0u32);
        let (ahead_known, behind_known) = loop {
            if back == NIL {
                break (true, false);
            }
            if front == NIL {
                break (false, true);
            }
            let (earlier, later) = (&self.orders[back as usize], &self.orders[front as usize]);
            qty_ahead += earlier.qty;
            orders_ahead += 1;
            qty_behind += later.qty;
            orders_behind += 1;
            (back, front) = (earlier.prev, later.next);
        };
        debug_assert!(ahead_known || behind_known);
        if !ahead_known {
            // The tail was reached first: ahead is what the rest of the level holds.
            qty_ahead = level.total - order.qty - qty_behind;
            orders_ahead = level.count - 1 - orders_behind;
        }
        Some(QueuePosition {
            order_id,
            side: order.side,
            price: order.price,
            qty: order.qty,
            qty_ahead,
            orders_ahead,
            level_qty: level.total,
            level_orders: level.count,
        })
    }

    /// [`Self::queue_position`] of each of `order_ids` (an account's open orders, say), in order.
    pub fn queue_positions(&self, order_ids: &[OrderId]) -> Vec<Option<QueuePosition>> {
        order_ids.iter().map(|&order_id| self.queue_position(order_id)).collect()
    }

    /// The queues of the best `levels` price levels of each side, best first, each as its orders'
    /// `(order id, open quantity)` oldest first — at most `per_level` of them (the level's
    /// total order count comes with it). What the worker publishes for readers that compute queue
    /// positions themselves (`feed::queue_text`).
    pub fn level_queues(&self, side: Side, levels: usize, per_level: usize) -> Vec<LevelQueue> {
        self.ladder(side)
            .iter()
            .take(levels)
            .map(|(_, index)| {
                let level = &self.levels[index as usize];
                let mut orders = Vec::with_capacity(per_level.min(level.count as usize));
                let mut cursor = level.head;
                while cursor != NIL && orders.len() < per_level {
                    let order = &self.orders[cursor as usize];
                    orders.push((order.id, order.qty));
                    cursor = order.next;
                }
                LevelQueue { price: level.price, total: level.total, count: level.count, orders }
            })
            .collect()
    }

    /// An account's net position and open quantities; all zero for an unknown account.
    pub fn exposure(&self, account: AccountId) -> Exposure {
        self.accounts.lookup(account)
    }

    /// Every account with a non-zero position or open quantity, by account id.
    pub fn exposures(&self) -> Vec<(AccountId, Exposure)> {
        self.accounts.non_zero()
    }

    pub(crate) fn set_restored_header(&mut self, seq: Seq, halted: bool, last_order_id: OrderId) {
        self.seq = seq;
        self.halted = halted;
        self.last_order_id = last_order_id;
    }

    pub(crate) fn set_restored_band(&mut self, bps: u32, reference: Price, last_trade_price: Price) {
        self.band_bps = bps;
        self.band_reference = reference;
        self.last_trade_price = last_trade_price;
    }

    pub(crate) fn set_restored_rules(
        &mut self,
        now_ms: u64,
        volatility: (u32, u64, u64, u64),
        window: &VolatilityWindow,
        fees: (i32, i32),
    ) {
        self.now_ms = now_ms;
        let (bps, window_ms, pause_ms, paused_until) = volatility;
        self.volatility.set(bps, window_ms, pause_ms);
        self.volatility.paused_until = paused_until;
        self.volatility.restore_window(&window.0, &window.1);
        self.fees = fees;
    }

    /// The volatility guard's window: its queues of lowest and highest prices (for snapshots).
    pub(crate) fn volatility_window(&self) -> VolatilityWindow {
        self.volatility.window()
    }

    pub(crate) fn restore_order(&mut self, order: &RestingOrder) {
        let account_slot = self.accounts.slot(order.account);
        self.insert_resting(OrderSlot {
            id: order.order_id,
            account: order.account,
            account_slot,
            price: order.price,
            qty: order.qty,
            side: order.side,
            stp: order.stp,
            post_only: order.post_only,
            max_position: order.max_position.unwrap_or(NO_LIMIT),
            limited: order.max_position.is_some(),
            prev: NIL,
            next: NIL,
            level: NIL,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<OrderSlot>(), 64);
        assert_eq!(std::mem::align_of::<OrderSlot>(), 64);
    }
}
