//! A deliberately simple reference order book for the property tests.
//!
//! Obviously correct over fast: each side is a `Vec` of resting orders kept sorted by (price
//! priority, arrival number); every question is a linear scan; open quantities are recomputed
//! from the resting orders whenever they are needed; positions live in a `BTreeMap`. It implements
//! the engine's documented semantics (see `engine_rs/src/types.rs` and issue 2) event for event,
//! including the order of events and their sequence numbers, so the property tests can compare the
//! real [`engine_rs::OrderBook`] against it after every command.
//!
//! Nothing here shares code with the engine except the vocabulary in `engine_rs::types`.

use engine_rs::{
    AccountId, Bbo, BookStatus, CancelReason, Command, CommandKind, Depth, Event, EventKind, Exposure, NewOrder,
    OrderId, OrderType, Price, Qty, RejectReason, RestingOrder, Seq, Side, StpMode, TimeInForce, MAX_BAND_BPS,
    MAX_FEE_BPS, MAX_PRICE, MAX_QTY, MAX_VOLATILITY_BPS, MAX_VOLATILITY_MS,
};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct RefOrder {
    pub id: OrderId,
    pub account: AccountId,
    pub side: Side,
    pub price: Price,
    /// Open (remaining) quantity.
    pub qty: Qty,
    pub stp: StpMode,
    pub post_only: bool,
    pub max_position: Option<Qty>,
    /// Time priority: a fresh number each time the order (re)joins a queue.
    pub arrival: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ReferenceBook {
    seq: Seq,
    halted: bool,
    last_order_id: OrderId,
    arrivals: u64,
    /// Best first: highest price, then oldest.
    bids: Vec<RefOrder>,
    /// Best first: lowest price, then oldest.
    asks: Vec<RefOrder>,
    positions: BTreeMap<AccountId, Qty>,
    /// The price band: basis points (0: none), the BAND's reference, the last trade's price (0:
    /// none since the start or the last reset).
    band_bps: u32,
    band_reference: Price,
    last_trade: Price,
    /// The journal's clock (never goes back).
    now: u64,
    /// The volatility guard: move (0: off), window, pause, when the pause ends (0: none).
    vol_bps: u32,
    vol_window: u64,
    vol_pause: u64,
    paused_until: u64,
    /// Every trade `(time, price)` since the guard last forgot, judged the obvious way: the
    /// window is whatever of it is recent enough when a trade is judged.
    vol_trades: Vec<(u64, Price)>,
    vol_tripped: bool,
    fees: (i32, i32),
}

/// Whether a resting order at `resting` on the opposite side of `taker_side` is marketable for a
/// taker with limit `limit` (`None`: a market order, which takes any price).
fn crosses(taker_side: Side, limit: Option<Price>, resting: Price) -> bool {
    match (limit, taker_side) {
        (None, _) => true,
        (Some(limit), Side::Buy) => resting <= limit,
        (Some(limit), Side::Sell) => resting >= limit,
    }
}

fn valid_qty(qty: Qty) -> bool {
    (1..=MAX_QTY).contains(&qty)
}

fn valid_price(price: Price) -> bool {
    (1..=MAX_PRICE).contains(&price)
}

/// Outcome of one matching pass.
struct MatchResult {
    remaining: Qty,
    /// Self-trade prevention stopped the taker (its remainder must be cancelled).
    stp_stopped: bool,
}

impl ReferenceBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn seq(&self) -> Seq {
        self.seq
    }

    pub fn is_halted(&self) -> bool {
        self.halted
    }

    pub fn last_order_id(&self) -> OrderId {
        self.last_order_id
    }

    pub fn is_paused(&self) -> bool {
        self.paused_until != 0
    }

    /// The clock moves to `now` (if later); a pause that is over ends.
    pub fn advance_clock(&mut self, now: u64) -> Vec<Event> {
        let mut out = Vec::new();
        self.now = self.now.max(now);
        if self.paused_until != 0 && self.now >= self.paused_until {
            self.paused_until = 0;
            self.emit(&mut out, EventKind::Status { status: BookStatus::PauseEnded });
        }
        out
    }

    pub fn apply(&mut self, command: &Command) -> Vec<Event> {
        let mut out = Vec::new();
        match *command {
            Command::New(ref order) => self.new_order(order, &mut out),
            Command::Cancel { order_id, account } => self.cancel(order_id, account, &mut out),
            Command::Replace { order_id, account, price, qty } => self.replace(order_id, account, price, qty, &mut out),
            Command::Volatility { bps, window_ms, pause_ms } => {
                let ms_ok = |ms: u64| (1..=MAX_VOLATILITY_MS).contains(&ms);
                if bps > MAX_VOLATILITY_BPS || (bps > 0 && !(ms_ok(window_ms) && ms_ok(pause_ms))) {
                    self.reject(&mut out, 0, 0, CommandKind::Volatility, RejectReason::InvalidVolatility);
                } else {
                    (self.vol_bps, self.vol_window, self.vol_pause) = (bps, window_ms, pause_ms);
                    // New settings judge from a fresh window.
                    self.vol_trades.clear();
                    self.emit(&mut out, EventKind::Status { status: BookStatus::Volatility });
                }
            }
            Command::Fees { maker_bps, taker_bps } => {
                if (0..=MAX_FEE_BPS).contains(&taker_bps) && (-taker_bps..=MAX_FEE_BPS).contains(&maker_bps) {
                    self.fees = (maker_bps, taker_bps);
                    self.emit(&mut out, EventKind::Status { status: BookStatus::Fees });
                } else {
                    self.reject(&mut out, 0, 0, CommandKind::Fees, RejectReason::InvalidFees);
                }
            }
            Command::Clock => {}
            Command::Halt => {
                self.halted = true;
                self.emit(&mut out, EventKind::Status { status: BookStatus::Halted });
            }
            Command::Resume => {
                self.halted = false;
                self.emit(&mut out, EventKind::Status { status: BookStatus::Resumed });
            }
            Command::Reset => self.reset(&mut out),
            Command::Band { bps, reference } => {
                if bps > MAX_BAND_BPS || (bps > 0 && !valid_price(reference)) {
                    self.reject(&mut out, 0, 0, CommandKind::Band, RejectReason::InvalidBand);
                } else {
                    self.band_bps = bps;
                    self.band_reference = reference;
                    self.emit(&mut out, EventKind::Status { status: BookStatus::Band });
                }
            }
        }
        if self.vol_tripped {
            self.vol_tripped = false;
            self.paused_until = (self.now + self.vol_pause).max(1);
            self.vol_trades.clear();
            self.emit(&mut out, EventKind::Status { status: BookStatus::Paused });
        }
        out
    }

    /// Judges a trade at `price` now: tripped if it is more than the guard's move from any trade
    /// of the window (itself included).
    fn judge_trade(&mut self, price: Price) {
        if self.vol_bps == 0 {
            return;
        }
        self.vol_trades.push((self.now, price));
        let oldest = self.now.saturating_sub(self.vol_window);
        let bps = self.vol_bps as i128;
        for &(at, then) in &self.vol_trades {
            if at < oldest {
                continue;
            }
            let (now_px, then_px) = (price as i128, then as i128);
            if now_px * 10_000 > then_px * (10_000 + bps) || now_px * 10_000 < then_px * (10_000 - bps) {
                self.vol_tripped = true;
            }
        }
    }

    /// The prices the band allows, inclusive: `bps` basis points of the reference either side
    /// (the last trade, else the BAND's reference), the width rounded down, at least one tick.
    fn band(&self) -> Option<(Price, Price)> {
        if self.band_bps == 0 {
            return None;
        }
        let reference = if self.last_trade != 0 { self.last_trade } else { self.band_reference };
        let width = (reference as i128 * self.band_bps as i128 / 10_000) as i64;
        Some((std::cmp::max(1, reference - width), std::cmp::min(MAX_PRICE, reference + width)))
    }

    fn in_band(&self, price: Price) -> bool {
        match self.band() {
            None => true,
            Some((low, high)) => low <= price && price <= high,
        }
    }

    // ----- helpers -----------------------------------------------------------------------------

    fn emit(&mut self, out: &mut Vec<Event>, kind: EventKind) {
        self.seq += 1;
        out.push(Event { seq: self.seq, kind });
    }

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

    fn side_vec(&self, side: Side) -> &Vec<RefOrder> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_vec_mut(&mut self, side: Side) -> &mut Vec<RefOrder> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Re-establishes price-time priority on one side with a plain stable sort.
    fn sort_side(&mut self, side: Side) {
        let orders = self.side_vec_mut(side);
        match side {
            Side::Buy => orders.sort_by_key(|o| (std::cmp::Reverse(o.price), o.arrival)),
            Side::Sell => orders.sort_by_key(|o| (o.price, o.arrival)),
        }
    }

    fn add_resting(&mut self, mut order: RefOrder) {
        self.arrivals += 1;
        order.arrival = self.arrivals;
        let side = order.side;
        self.side_vec_mut(side).push(order);
        self.sort_side(side);
    }

    fn find(&self, order_id: OrderId) -> Option<&RefOrder> {
        self.bids.iter().chain(self.asks.iter()).find(|o| o.id == order_id)
    }

    fn remove(&mut self, order_id: OrderId) -> RefOrder {
        for side in [Side::Buy, Side::Sell] {
            let orders = self.side_vec_mut(side);
            if let Some(index) = orders.iter().position(|o| o.id == order_id) {
                return orders.remove(index);
            }
        }
        panic!("reference: removing order {order_id} that does not rest");
    }

    fn level_total(&self, side: Side, price: Price) -> Qty {
        self.side_vec(side).iter().filter(|o| o.price == price).map(|o| o.qty).sum()
    }

    fn open_qty(&self, account: AccountId, side: Side) -> Qty {
        self.side_vec(side).iter().filter(|o| o.account == account).map(|o| o.qty).sum()
    }

    fn position(&self, account: AccountId) -> Qty {
        self.positions.get(&account).copied().unwrap_or(0)
    }

    /// Worst-case exposure check: position + same-side open + `qty` > `max_position`, in i128
    /// so nothing can overflow. `open_adjust` is taken off the same-side open quantity (the
    /// order being replaced).
    fn exceeds(&self, account: AccountId, side: Side, qty: Qty, max_position: Option<Qty>, open_adjust: Qty) -> bool {
        let Some(max) = max_position else {
            return false;
        };
        let position = self.position(account) as i128;
        let open = (self.open_qty(account, side) - open_adjust) as i128;
        let worst = match side {
            Side::Buy => position + open,
            Side::Sell => open - position,
        };
        worst + qty as i128 > max as i128
    }

    fn opposite_crosses(&self, side: Side, limit: Option<Price>) -> bool {
        self.side_vec(side.opposite()).first().is_some_and(|best| crosses(side, limit, best.price))
    }

    // ----- matching ----------------------------------------------------------------------------

    /// Takes liquidity from the opposite side: best level first, oldest first inside a level, at
    /// the maker's price, with self-trade prevention; one `Level` event per level touched, after
    /// the level is processed.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        order_id: OrderId,
        account: AccountId,
        side: Side,
        limit: Option<Price>,
        qty: Qty,
        stp: StpMode,
        out: &mut Vec<Event>,
    ) -> MatchResult {
        let maker_side = side.opposite();
        let mut remaining = qty;
        while remaining > 0 {
            let Some(best) = self.side_vec(maker_side).first() else {
                break;
            };
            if !crosses(side, limit, best.price) {
                break;
            }
            let level_price = best.price;
            let queue: Vec<OrderId> =
                self.side_vec(maker_side).iter().filter(|o| o.price == level_price).map(|o| o.id).collect();
            let mut stp_stopped = false;
            let mut touched = false;
            for maker_id in queue {
                if remaining == 0 {
                    break;
                }
                let maker = self.find(maker_id).expect("queued maker rests").clone();
                if maker.account == account && stp != StpMode::None {
                    if matches!(stp, StpMode::CancelOldest | StpMode::CancelBoth) {
                        touched = true;
                        self.remove(maker_id);
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
                    if matches!(stp, StpMode::CancelNewest | StpMode::CancelBoth) {
                        stp_stopped = true;
                        break;
                    }
                    continue;
                }
                touched = true;
                let traded = maker.qty.min(remaining);
                remaining -= traded;
                let maker_remaining = maker.qty - traded;
                if maker_remaining == 0 {
                    self.remove(maker_id);
                } else {
                    let orders = self.side_vec_mut(maker_side);
                    orders.iter_mut().find(|o| o.id == maker_id).unwrap().qty = maker_remaining;
                }
                self.last_trade = maker.price;
                self.judge_trade(maker.price);
                let signed = |s: Side| if s == Side::Buy { traded } else { -traded };
                *self.positions.entry(account).or_insert(0) += signed(side);
                *self.positions.entry(maker.account).or_insert(0) += signed(maker_side);
                self.emit(
                    out,
                    EventKind::Trade {
                        maker_order_id: maker.id,
                        maker_account: maker.account,
                        taker_order_id: order_id,
                        taker_account: account,
                        price: maker.price,
                        qty: traded,
                        aggressor: side,
                        maker_remaining,
                        taker_remaining: remaining,
                        maker_fee_bps: self.fees.0,
                        taker_fee_bps: self.fees.1,
                    },
                );
            }
            // The level changed unless the first order met stopped a CancelNewest taker.
            if touched {
                let total = self.level_total(maker_side, level_price);
                self.emit(out, EventKind::Level { side: maker_side, price: level_price, qty: total });
            }
            if stp_stopped {
                return MatchResult { remaining, stp_stopped: true };
            }
        }
        MatchResult { remaining, stp_stopped: false }
    }

    /// FOK: would the order fill completely? Answered the obviously right way: run the match on a
    /// throw-away copy of the book and look at what is left.
    #[allow(clippy::too_many_arguments)]
    fn would_fill(
        &self,
        order_id: OrderId,
        account: AccountId,
        side: Side,
        limit: Option<Price>,
        qty: Qty,
        stp: StpMode,
    ) -> bool {
        let mut scratch = self.clone();
        let mut ignored = Vec::new();
        scratch.take(order_id, account, side, limit, qty, stp, &mut ignored).remaining == 0
    }

    // ----- commands ----------------------------------------------------------------------------

    fn new_order(&mut self, order: &NewOrder, out: &mut Vec<Event>) {
        let reject = |book: &mut Self, out: &mut Vec<Event>, reason| {
            let (order_id, account, client_ref) = (order.order_id, order.account, order.client_ref);
            book.emit(out, EventKind::Rejected { order_id, account, command: CommandKind::New, reason, client_ref })
        };
        // A negative limit is malformed, as the journal's decoder says: the id is consumed, no
        // duplicate check (a malformed entry's only outcome is MALFORMED).
        if order.max_position.is_some_and(|max| max < 0) {
            self.last_order_id = self.last_order_id.max(order.order_id);
            return reject(self, out, RejectReason::Malformed);
        }
        if order.order_id <= self.last_order_id {
            return reject(self, out, RejectReason::DuplicateOrderId);
        }
        // Consumed whatever happens next.
        self.last_order_id = order.order_id;
        if !valid_qty(order.qty) {
            return reject(self, out, RejectReason::InvalidQuantity);
        }
        let is_limit = order.order_type == OrderType::Limit;
        if is_limit && !valid_price(order.price) {
            return reject(self, out, RejectReason::InvalidPrice);
        }
        if !is_limit && order.tif == TimeInForce::Gtc {
            return reject(self, out, RejectReason::InvalidTimeInForce);
        }
        if order.post_only && !(is_limit && order.tif == TimeInForce::Gtc) {
            return reject(self, out, RejectReason::InvalidPostOnly);
        }
        if self.halted {
            return reject(self, out, RejectReason::BookHalted);
        }
        if self.paused_until != 0 {
            return reject(self, out, RejectReason::VolatilityPause);
        }
        if is_limit && !self.in_band(order.price) {
            return reject(self, out, RejectReason::PriceOutOfBand);
        }
        // A market order is a limit order at the band's edge on its side, when there is a band.
        let band_edge = self.band().filter(|_| !is_limit).map(|(low, high)| match order.side {
            Side::Buy => high,
            Side::Sell => low,
        });
        let limit = if is_limit { Some(order.price) } else { band_edge };
        if order.post_only && self.opposite_crosses(order.side, limit) {
            return reject(self, out, RejectReason::PostOnlyWouldCross);
        }
        if self.exceeds(order.account, order.side, order.qty, order.max_position, 0) {
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
                price: if is_limit { order.price } else { 0 },
                qty: order.qty,
                post_only: order.post_only,
                client_ref: order.client_ref,
            },
        );
        let cancelled = |book: &mut Self, out: &mut Vec<Event>, qty, reason| {
            book.emit(
                out,
                EventKind::Cancelled {
                    order_id: order.order_id,
                    account: order.account,
                    side: order.side,
                    price: if is_limit { order.price } else { 0 },
                    qty,
                    reason,
                },
            )
        };
        if order.tif == TimeInForce::Fok
            && !self.would_fill(order.order_id, order.account, order.side, limit, order.qty, order.stp)
        {
            return cancelled(self, out, order.qty, CancelReason::FokUnfillable);
        }
        let result = self.take(order.order_id, order.account, order.side, limit, order.qty, order.stp, out);
        if result.remaining == 0 {
            return;
        }
        if result.stp_stopped {
            return cancelled(self, out, result.remaining, CancelReason::SelfTrade);
        }
        if band_edge.is_some() && !self.side_vec(order.side.opposite()).is_empty() {
            return cancelled(self, out, result.remaining, CancelReason::PriceBand);
        }
        if !is_limit || order.tif != TimeInForce::Gtc {
            return cancelled(self, out, result.remaining, CancelReason::Remainder);
        }
        self.add_resting(RefOrder {
            id: order.order_id,
            account: order.account,
            side: order.side,
            price: order.price,
            qty: result.remaining,
            stp: order.stp,
            post_only: order.post_only,
            max_position: order.max_position,
            arrival: 0,
        });
        let total = self.level_total(order.side, order.price);
        self.emit(out, EventKind::Level { side: order.side, price: order.price, qty: total });
    }

    fn owned(&self, order_id: OrderId, account: AccountId) -> Option<RefOrder> {
        self.find(order_id).filter(|o| o.account == account).cloned()
    }

    fn cancel(&mut self, order_id: OrderId, account: AccountId, out: &mut Vec<Event>) {
        let Some(order) = self.owned(order_id, account) else {
            return self.reject(out, order_id, account, CommandKind::Cancel, RejectReason::UnknownOrder);
        };
        self.remove(order_id);
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
        let total = self.level_total(order.side, order.price);
        self.emit(out, EventKind::Level { side: order.side, price: order.price, qty: total });
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
        // Nothing to change: malformed, whatever the book's state.
        if price.is_none() && qty.is_none() {
            return reject(self, out, RejectReason::Malformed);
        }
        if self.halted {
            return reject(self, out, RejectReason::BookHalted);
        }
        if self.paused_until != 0 {
            return reject(self, out, RejectReason::VolatilityPause);
        }
        let Some(order) = self.owned(order_id, account) else {
            return reject(self, out, RejectReason::UnknownOrder);
        };
        let new_price = price.unwrap_or(order.price);
        let new_qty = qty.unwrap_or(order.qty);
        if !valid_qty(new_qty) {
            return reject(self, out, RejectReason::InvalidQuantity);
        }
        if !valid_price(new_price) {
            return reject(self, out, RejectReason::InvalidPrice);
        }
        if new_price != order.price && !self.in_band(new_price) {
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
        if new_price == order.price && new_qty <= order.qty {
            // Same price, not larger: changed in place, keeps its place in the queue.
            self.side_vec_mut(order.side).iter_mut().find(|o| o.id == order_id).unwrap().qty = new_qty;
            self.emit(out, replaced(true));
            if new_qty != order.qty {
                let total = self.level_total(order.side, order.price);
                self.emit(out, EventKind::Level { side: order.side, price: order.price, qty: total });
            }
            return;
        }
        if order.post_only && self.opposite_crosses(order.side, Some(new_price)) {
            return reject(self, out, RejectReason::PostOnlyWouldCross);
        }
        if new_qty > order.qty && self.exceeds(account, order.side, new_qty, order.max_position, order.qty) {
            return reject(self, out, RejectReason::PositionLimit);
        }
        // Loses priority: leaves the book, may trade as a taker, and rests at the back.
        self.remove(order_id);
        self.emit(out, replaced(false));
        if new_price != order.price {
            let total = self.level_total(order.side, order.price);
            self.emit(out, EventKind::Level { side: order.side, price: order.price, qty: total });
        }
        let result = self.take(order_id, account, order.side, Some(new_price), new_qty, order.stp, out);
        if result.stp_stopped {
            return self.emit(
                out,
                EventKind::Cancelled {
                    order_id,
                    account,
                    side: order.side,
                    price: new_price,
                    qty: result.remaining,
                    reason: CancelReason::SelfTrade,
                },
            );
        }
        if result.remaining > 0 {
            self.add_resting(RefOrder { price: new_price, qty: result.remaining, ..order });
            let total = self.level_total(order.side, new_price);
            self.emit(out, EventKind::Level { side: order.side, price: new_price, qty: total });
        }
    }

    fn reset(&mut self, out: &mut Vec<Event>) {
        for side in [Side::Buy, Side::Sell] {
            let orders = self.side_vec(side).clone();
            for (index, order) in orders.iter().enumerate() {
                self.emit(
                    out,
                    EventKind::Cancelled {
                        order_id: order.id,
                        account: order.account,
                        side,
                        price: order.price,
                        qty: order.qty,
                        reason: CancelReason::Reset,
                    },
                );
                let last_of_level = orders.get(index + 1).is_none_or(|next| next.price != order.price);
                if last_of_level {
                    self.emit(out, EventKind::Level { side, price: order.price, qty: 0 });
                }
            }
        }
        self.bids.clear();
        self.asks.clear();
        self.positions.clear();
        self.last_trade = 0;
        self.vol_trades.clear();
        self.paused_until = 0;
        self.emit(out, EventKind::Status { status: BookStatus::Reset });
    }

    // ----- views -------------------------------------------------------------------------------

    /// Aggregated levels of one side, best first.
    fn levels(&self, side: Side) -> Vec<(Price, Qty)> {
        let mut levels: Vec<(Price, Qty)> = Vec::new();
        for order in self.side_vec(side) {
            match levels.last_mut() {
                Some((price, qty)) if *price == order.price => *qty += order.qty,
                _ => levels.push((order.price, order.qty)),
            }
        }
        levels
    }

    pub fn bbo(&self) -> Bbo {
        Bbo { bid: self.levels(Side::Buy).first().copied(), ask: self.levels(Side::Sell).first().copied() }
    }

    pub fn depth(&self, n: usize) -> Depth {
        let mut bids = self.levels(Side::Buy);
        let mut asks = self.levels(Side::Sell);
        bids.truncate(n);
        asks.truncate(n);
        Depth { bids, asks }
    }

    /// Bids best to worst, then asks best to worst, oldest first inside a level.
    pub fn resting_orders(&self) -> Vec<RestingOrder> {
        self.bids
            .iter()
            .chain(self.asks.iter())
            .map(|o| RestingOrder {
                order_id: o.id,
                account: o.account,
                side: o.side,
                price: o.price,
                qty: o.qty,
                stp: o.stp,
                post_only: o.post_only,
                max_position: o.max_position,
            })
            .collect()
    }

    /// Accounts with a non-zero position or open quantity, by account id.
    pub fn exposures(&self) -> Vec<(AccountId, Exposure)> {
        let mut accounts: BTreeMap<AccountId, Exposure> = BTreeMap::new();
        for (&account, &position) in &self.positions {
            accounts.entry(account).or_default().position = position;
        }
        for order in self.bids.iter() {
            accounts.entry(order.account).or_default().open_buy += order.qty;
        }
        for order in self.asks.iter() {
            accounts.entry(order.account).or_default().open_sell += order.qty;
        }
        accounts.into_iter().filter(|(_, exposure)| !exposure.is_zero()).collect()
    }
}
