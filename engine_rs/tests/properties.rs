//! Property tests: random command sequences against the real [`OrderBook`] and the simple
//! [`reference::ReferenceBook`], compared event for event, with invariants checked after every
//! command; snapshot/restore at random cut points; corrupted snapshots.
//!
//! Case counts default to what fits the CI budget; `PROPTEST_CASES=5000 cargo test --test
//! properties` hunts deeper.

mod reference;

use engine_rs::*;
use proptest::prelude::*;
use proptest::sample::Index;
use reference::ReferenceBook;
use std::collections::{BTreeMap, HashMap};

// ----- configuration --------------------------------------------------------------------------

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(default_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default_cases),
        // No regressions file in the tree: a failure prints its minimal input, which belongs in a
        // named #[test] here.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ----- the generator ----------------------------------------------------------------------------
//
// Operations are generated abstractly ("cancel the k-th live order", "a fresh id") and turned into
// concrete commands against the reference book's state as the sequence runs, so that cancels and
// replaces mostly hit live orders and ids mostly increase. The resolution is deterministic, so
// proptest can shrink the abstract sequence.

#[derive(Clone, Copy, Debug)]
enum IdChoice {
    /// Above the high-water mark by this gap.
    Fresh(u64),
    /// At or below the high-water mark by this much: a duplicate.
    Stale(u64),
    Zero,
    /// A big jump upwards.
    Jump,
}

#[derive(Clone, Copy, Debug)]
enum PriceChoice {
    /// This many steps from the mid on the order's own passive side (below it for a buy, above
    /// for a sell); negative is aggressive. Mostly passive so the book builds depth, often enough
    /// aggressive that it crosses.
    Passive(i64),
    Raw(Price),
}

#[derive(Clone, Copy, Debug)]
enum QtyChoice {
    Small(Qty),
    Raw(Qty),
}

#[derive(Clone, Copy, Debug)]
enum ReplaceQty {
    Keep,
    Delta(i64),
    Abs(QtyChoice),
}

#[derive(Clone, Copy, Debug)]
enum Target {
    /// The k-th live order (modulo their number), by its owner.
    Live(Index),
    /// The k-th live order, but by another account.
    Foreign(Index),
    /// Some id used before (probably gone by now).
    Past(Index),
    /// An id nobody used.
    Never,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    New {
        id: IdChoice,
        account: u64,
        side: Side,
        market: bool,
        tif: TimeInForce,
        price: PriceChoice,
        qty: QtyChoice,
        post_only: bool,
        stp: StpMode,
        max_position: Option<Qty>,
    },
    Cancel(Target),
    Replace {
        target: Target,
        price: Option<PriceChoice>,
        qty: ReplaceQty,
    },
    Halt,
    Resume,
    Reset,
    /// A price band of this many basis points around the mid moved by this many steps.
    Band {
        bps: u32,
        offset: i64,
    },
    /// The volatility guard: move in basis points, window and pause in milliseconds.
    Volatility {
        bps: u32,
        window_ms: u64,
        pause_ms: u64,
    },
    Fees {
        maker_bps: i32,
        taker_bps: i32,
    },
    /// The journal's clock moves on by this many milliseconds (a CLOCK entry).
    Tick(u64),
}

fn volatility_op() -> impl Strategy<Value = Op> {
    let bps = prop_oneof![3 => Just(0u32), 4 => Just(100u32), 4 => Just(300u32), 1 => Just(MAX_VOLATILITY_BPS + 1)];
    let ms = prop_oneof![1 => Just(0u64), 3 => Just(1_000u64), 3 => Just(60_000u64), 1 => Just(MAX_VOLATILITY_MS + 1)];
    (bps, ms.clone(), ms).prop_map(|(bps, window_ms, pause_ms)| Op::Volatility { bps, window_ms, pause_ms })
}

fn fees_op() -> impl Strategy<Value = Op> {
    let maker = prop_oneof![Just(0i32), Just(-2), Just(1), Just(-20), Just(MAX_FEE_BPS + 1)];
    let taker = prop_oneof![Just(0i32), Just(3), Just(10), Just(-1)];
    (maker, taker).prop_map(|(maker_bps, taker_bps)| Op::Fees { maker_bps, taker_bps })
}

fn tick_op() -> impl Strategy<Value = Op> {
    prop_oneof![2 => Just(0u64), 4 => 1u64..2_000, 2 => Just(60_000u64), 1 => Just(1_000_000u64)].prop_map(Op::Tick)
}

fn band_op() -> impl Strategy<Value = Op> {
    let bps = prop_oneof![
        3 => Just(0u32),
        4 => Just(100u32),
        6 => Just(300u32),
        6 => Just(1_000u32),
        2 => Just(5u32),
        1 => Just(MAX_BAND_BPS),
        1 => Just(MAX_BAND_BPS + 1),
    ];
    (bps, -4i64..=4).prop_map(|(bps, offset)| Op::Band { bps, offset })
}

fn id_choice() -> impl Strategy<Value = IdChoice> {
    prop_oneof![
        60 => Just(IdChoice::Fresh(1)),
        20 => (2u64..5).prop_map(IdChoice::Fresh),
        6 => (0u64..4).prop_map(IdChoice::Stale),
        1 => Just(IdChoice::Zero),
        1 => Just(IdChoice::Jump),
    ]
}

fn price_choice() -> impl Strategy<Value = PriceChoice> {
    prop_oneof![
        72 => (1i64..=5).prop_map(PriceChoice::Passive),
        18 => (-3i64..=0).prop_map(PriceChoice::Passive),
        6 => (-12i64..=12).prop_map(PriceChoice::Passive),
        4 => prop_oneof![
            Just(0),
            Just(-1),
            Just(1),
            Just(MAX_PRICE),
            Just(MAX_PRICE + 1),
            Just(i64::MAX),
            Just(i64::MIN),
        ]
        .prop_map(PriceChoice::Raw),
    ]
}

fn qty_choice() -> impl Strategy<Value = QtyChoice> {
    prop_oneof![
        80 => (1i64..=10).prop_map(QtyChoice::Small),
        14 => (1i64..=40).prop_map(QtyChoice::Small),
        6 => prop_oneof![
            Just(0),
            Just(-1),
            Just(-10),
            Just(i64::MIN),
            Just(MAX_QTY),
            Just(MAX_QTY + 1),
            Just(i64::MAX),
        ]
        .prop_map(QtyChoice::Raw),
    ]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![
        4 => Just(StpMode::None),
        2 => Just(StpMode::CancelNewest),
        2 => Just(StpMode::CancelOldest),
        2 => Just(StpMode::CancelBoth),
    ]
}

fn max_position() -> impl Strategy<Value = Option<Qty>> {
    prop_oneof![
        75 => Just(None),
        20 => (0i64..=40).prop_map(Some),
        2 => (-5i64..0).prop_map(Some),
        2 => Just(Some(Qty::MAX)),
        1 => Just(Some(MAX_QTY)),
    ]
}

fn new_op() -> impl Strategy<Value = Op> {
    // (market, tif, post_only): mostly valid combinations, sometimes invalid ones.
    let kind = prop_oneof![
        50 => Just((false, TimeInForce::Gtc, false)),
        10 => Just((false, TimeInForce::Gtc, true)),
        10 => Just((false, TimeInForce::Ioc, false)),
        8 => Just((false, TimeInForce::Fok, false)),
        7 => Just((true, TimeInForce::Ioc, false)),
        6 => Just((true, TimeInForce::Fok, false)),
        3 => (any::<bool>(), prop_oneof![Just(TimeInForce::Gtc), Just(TimeInForce::Ioc), Just(TimeInForce::Fok)], any::<bool>()),
    ];
    (id_choice(), 0u64..8, side(), kind, price_choice(), qty_choice(), stp(), max_position()).prop_map(
        |(id, account, side, (market, tif, post_only), price, qty, stp, max_position)| Op::New {
            id,
            account,
            side,
            market,
            tif,
            price,
            qty,
            post_only,
            stp,
            max_position,
        },
    )
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        85 => any::<Index>().prop_map(Target::Live),
        5 => any::<Index>().prop_map(Target::Foreign),
        7 => any::<Index>().prop_map(Target::Past),
        3 => Just(Target::Never),
    ]
}

fn replace_qty() -> impl Strategy<Value = ReplaceQty> {
    prop_oneof![
        3 => Just(ReplaceQty::Keep),
        5 => (-6i64..=6).prop_map(ReplaceQty::Delta),
        2 => qty_choice().prop_map(ReplaceQty::Abs),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        200 => new_op(),
        30 => target().prop_map(Op::Cancel),
        45 => (target(), prop::option::weighted(0.6, price_choice()), replace_qty())
            .prop_map(|(target, price, qty)| Op::Replace { target, price, qty }),
        2 => Just(Op::Halt),
        14 => Just(Op::Resume),
        1 => Just(Op::Reset),
        4 => band_op(),
        3 => volatility_op(),
        2 => fees_op(),
        12 => tick_op(),
    ]
}

/// A random run: how many accounts trade (1..=5, few so that self-trades happen), where the
/// prices sit (usually a narrow band of single ticks around 100, sometimes levels several ticks
/// apart so that the ladder's 64-tick chunks are crossed), and the operations.
#[derive(Clone, Debug)]
struct Scenario {
    accounts: u64,
    mid: Price,
    /// Ticks between neighbouring generated price levels.
    step: Price,
    ops: Vec<Op>,
}

fn scenario(max_len: usize) -> impl Strategy<Value = Scenario> {
    let band = prop_oneof![
        6 => Just((100, 1)),
        2 => Just((128, 1)),
        1 => Just((64 * 1000 + 3, 5)),
        1 => Just((5_000, 37)),
    ];
    (1u64..=5, band, prop::collection::vec(op(), 1..=max_len)).prop_map(|(accounts, (mid, step), ops)| Scenario {
        accounts,
        mid,
        step,
        ops,
    })
}

/// Picks the order a cancel or replace aims at, and the account that sends it.
fn resolve_target(
    target: Target,
    live: &[RestingOrder],
    used_ids: &[OrderId],
    last_id: OrderId,
    accounts: u64,
) -> (OrderId, AccountId) {
    match target {
        Target::Live(index) if !live.is_empty() => {
            let order = index.get(live);
            (order.order_id, order.account)
        }
        // Another account (possibly one outside the scenario's accounts) names a live order.
        Target::Foreign(index) if !live.is_empty() => {
            let order = index.get(live);
            (order.order_id, order.account % 6 + 1)
        }
        Target::Past(index) if !used_ids.is_empty() => (*index.get(used_ids), index.index(7) as u64 % accounts + 1),
        _ => (last_id + 1_000_000, 1),
    }
}

/// The commands of [`concretize_timed`] without their times.
fn concretize(scenario: &Scenario) -> Vec<Command> {
    concretize_timed(scenario).into_iter().map(|(_, command)| command).collect()
}

/// Applies a command at its journal time, as `apply_entry` does: the clock first, then the command.
fn apply_at(book: &mut OrderBook, at: u64, command: &Command, out: &mut Vec<Event>) {
    book.advance_clock(at, out);
    book.apply(command, out);
}

fn apply_at_collect(book: &mut OrderBook, at: u64, command: &Command) -> Vec<Event> {
    let mut out = Vec::new();
    apply_at(book, at, command, &mut out);
    out
}

fn reference_at(book: &mut ReferenceBook, at: u64, command: &Command) -> Vec<Event> {
    let mut out = book.advance_clock(at);
    out.extend(book.apply(command));
    out
}

/// Turns abstract ops into commands, each at the journal time (milliseconds) it is applied at,
/// running them through a reference book to know what is live.
fn concretize_timed(scenario: &Scenario) -> Vec<(u64, Command)> {
    let Scenario { accounts, mid, step, ref ops } = *scenario;
    let mut book = ReferenceBook::new();
    let mut used_ids: Vec<OrderId> = Vec::new();
    let mut commands = Vec::with_capacity(ops.len());
    let mut now = 0u64;
    let owner = |account: u64| account % accounts + 1;
    let price = |choice: PriceChoice, side: Side| match (choice, side) {
        (PriceChoice::Passive(offset), Side::Buy) => mid - offset * step,
        (PriceChoice::Passive(offset), Side::Sell) => mid + offset * step,
        (PriceChoice::Raw(price), _) => price,
    };
    let qty = |choice: QtyChoice| match choice {
        QtyChoice::Small(qty) | QtyChoice::Raw(qty) => qty,
    };
    for op in ops {
        let live = book.resting_orders();
        let resolve = |target: Target| resolve_target(target, &live, &used_ids, book.last_order_id(), accounts);
        let command = match *op {
            Op::New { id, account, side, market, tif, price: p, qty: q, post_only, stp, max_position } => {
                let last = book.last_order_id();
                let order_id = match id {
                    IdChoice::Fresh(gap) => last + gap,
                    IdChoice::Stale(back) => last.saturating_sub(back),
                    IdChoice::Zero => 0,
                    IdChoice::Jump => last + 1_000,
                };
                used_ids.push(order_id);
                let order_type = if market { OrderType::Market } else { OrderType::Limit };
                // Market orders mostly carry the conventional price 0 (anything is echoed back).
                let price = if market && matches!(p, PriceChoice::Passive(_)) { 0 } else { price(p, side) };
                Command::New(NewOrder {
                    order_id,
                    account: owner(account),
                    side,
                    order_type,
                    tif,
                    price,
                    qty: qty(q),
                    post_only,
                    stp,
                    max_position,
                    client_ref: order_id ^ 0x5a5a,
                })
            }
            Op::Cancel(target) => {
                let (order_id, account) = resolve(target);
                Command::Cancel { order_id, account }
            }
            Op::Replace { target, price: p, qty: q } => {
                let (order_id, account) = resolve(target);
                let (current, side) =
                    live.iter().find(|o| o.order_id == order_id).map(|o| (o.qty, o.side)).unwrap_or((5, Side::Buy));
                let qty = match q {
                    ReplaceQty::Keep => None,
                    ReplaceQty::Delta(delta) => Some(current + delta),
                    ReplaceQty::Abs(choice) => Some(qty(choice)),
                };
                Command::Replace { order_id, account, price: p.map(|p| price(p, side)), qty }
            }
            Op::Halt => Command::Halt,
            Op::Resume => Command::Resume,
            Op::Reset => Command::Reset,
            // Offset 4 stands for an invalid reference (0), to exercise the rejection.
            Op::Band { bps, offset } => {
                Command::Band { bps, reference: if offset == 4 { 0 } else { mid + offset * step } }
            }
            Op::Volatility { bps, window_ms, pause_ms } => Command::Volatility { bps, window_ms, pause_ms },
            Op::Fees { maker_bps, taker_bps } => Command::Fees { maker_bps, taker_bps },
            Op::Tick(ms) => {
                now += ms;
                Command::Clock
            }
        };
        reference_at(&mut book, now, &command);
        commands.push((now, command));
    }
    commands
}

// ----- invariants tracked from the event stream alone -------------------------------------------

#[derive(Clone, Copy, Debug, Default)]
struct Tracked {
    /// Everything the order ever asked for: accepted quantity plus replace increases.
    committed: Qty,
    filled: Qty,
    cancelled: Qty,
    open: Qty,
}

/// What a consumer of the event stream alone would know: orders' quantities, positions and L2.
#[derive(Default)]
struct Ledger {
    orders: HashMap<OrderId, Tracked>,
    positions: BTreeMap<AccountId, Qty>,
    levels: BTreeMap<(u8, Price), Qty>,
    next_seq: Seq,
    /// Orders the last command's events mentioned.
    touched: Vec<OrderId>,
}

impl Ledger {
    fn new() -> Self {
        Ledger { next_seq: 1, ..Default::default() }
    }

    fn track(&mut self, id: OrderId) -> Result<&mut Tracked, TestCaseError> {
        self.orders.get_mut(&id).ok_or_else(|| TestCaseError::fail(format!("event for order {id} never accepted")))
    }

    /// Folds one command's events in and checks everything checkable from them.
    fn absorb(&mut self, command: &Command, events: &[Event]) -> Result<(), TestCaseError> {
        // A CLOCK emits nothing of its own (its time may end a pause, absorbed as a CLOCK too).
        prop_assert!(!events.is_empty() || *command == Command::Clock, "a command produced no event");
        for event in events {
            prop_assert_eq!(event.seq, self.next_seq, "sequence gap");
            self.next_seq += 1;
        }
        if let Some(Event { kind: EventKind::Rejected { .. }, .. }) = events.first() {
            prop_assert_eq!(events.len(), 1, "a rejection comes alone");
        }
        if let Command::New(order) = command {
            let outcomes = events
                .iter()
                .filter(|e| match e.kind {
                    EventKind::Accepted { order_id, .. } | EventKind::Rejected { order_id, .. } => {
                        order_id == order.order_id
                    }
                    _ => false,
                })
                .count();
            prop_assert_eq!(outcomes, 1, "a NEW gets exactly one accepted or rejected");
            let first_is_outcome = matches!(
                events[0].kind,
                EventKind::Accepted { order_id, .. } | EventKind::Rejected { order_id, command: CommandKind::New, .. }
                    if order_id == order.order_id
            );
            prop_assert!(first_is_outcome, "a NEW's first event is its accepted or rejected");
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        for event in events {
            match event.kind {
                EventKind::Accepted { order_id, qty, .. } => {
                    prop_assert!(!self.orders.contains_key(&order_id), "order {} accepted twice", order_id);
                    prop_assert!(qty > 0);
                    self.orders.insert(order_id, Tracked { committed: qty, open: qty, ..Tracked::default() });
                    touched.push(order_id);
                }
                EventKind::Rejected { .. } | EventKind::Status { .. } => {}
                EventKind::Trade {
                    maker_order_id,
                    maker_account,
                    taker_order_id,
                    taker_account,
                    qty,
                    aggressor,
                    maker_remaining,
                    taker_remaining,
                    price,
                    ..
                } => {
                    prop_assert!(qty > 0 && price > 0);
                    prop_assert_ne!(maker_order_id, taker_order_id);
                    for (id, remaining) in [(maker_order_id, maker_remaining), (taker_order_id, taker_remaining)] {
                        let tracked = self.track(id)?;
                        tracked.open -= qty;
                        tracked.filled += qty;
                        prop_assert_eq!(tracked.open, remaining, "remaining of order {} after a trade", id);
                        touched.push(id);
                    }
                    let signed = if aggressor == Side::Buy { qty } else { -qty };
                    *self.positions.entry(taker_account).or_default() += signed;
                    *self.positions.entry(maker_account).or_default() -= signed;
                }
                EventKind::Cancelled { order_id, qty, .. } => {
                    prop_assert!(qty > 0, "cancelled nothing");
                    let tracked = self.track(order_id)?;
                    tracked.open -= qty;
                    tracked.cancelled += qty;
                    touched.push(order_id);
                }
                EventKind::Replaced { order_id, old_qty, qty, .. } => {
                    let tracked = self.track(order_id)?;
                    prop_assert_eq!(tracked.open, old_qty, "replace's old quantity");
                    tracked.committed += qty - old_qty;
                    tracked.open = qty;
                    touched.push(order_id);
                }
                EventKind::Level { side, price, qty } => {
                    prop_assert!(qty >= 0);
                    if qty == 0 {
                        self.levels.remove(&(side as u8, price));
                    } else {
                        self.levels.insert((side as u8, price), qty);
                    }
                }
            }
        }
        if matches!(command, Command::Reset) {
            self.positions.clear();
        }
        self.touched = touched;
        for &id in &self.touched {
            let t = self.orders[&id];
            prop_assert!(t.open >= 0, "order {} open below zero: {:?}", id, t);
            prop_assert!(t.filled <= t.committed, "order {} overfilled: {:?}", id, t);
            prop_assert_eq!(t.filled + t.cancelled + t.open, t.committed, "order {} quantity not conserved", id);
        }
        Ok(())
    }

    /// The book's resting orders are exactly the tracked orders with open quantity, and the
    /// event-built L2 and positions match the book.
    fn check_against(&self, book: &OrderBook) -> Result<(), TestCaseError> {
        let resting: BTreeMap<OrderId, Qty> = book.resting_orders().iter().map(|o| (o.order_id, o.qty)).collect();
        let open: BTreeMap<OrderId, Qty> =
            self.orders.iter().filter(|(_, t)| t.open > 0).map(|(&id, t)| (id, t.open)).collect();
        prop_assert_eq!(resting, open, "resting orders vs open quantities from events");
        // The id index forgets orders that left and finds those that stay.
        for &id in &self.touched {
            let open = self.orders[&id].open;
            prop_assert_eq!(book.order(id).map(|o| o.qty), (open > 0).then_some(open), "order({})", id);
        }
        let depth = book.depth(usize::MAX);
        let mut levels = BTreeMap::new();
        for (side, side_levels) in [(Side::Buy, &depth.bids), (Side::Sell, &depth.asks)] {
            for &(price, qty) in side_levels {
                levels.insert((side as u8, price), qty);
            }
        }
        prop_assert_eq!(&levels, &self.levels, "L2 built from level events vs the book's depth");
        let positions: BTreeMap<AccountId, Qty> =
            self.positions.iter().filter(|(_, &p)| p != 0).map(|(&a, &p)| (a, p)).collect();
        let book_positions: BTreeMap<AccountId, Qty> =
            book.exposures().into_iter().filter(|(_, e)| e.position != 0).map(|(a, e)| (a, e.position)).collect();
        prop_assert_eq!(positions, book_positions, "positions from trades vs the book");
        Ok(())
    }
}

/// Invariants of one book's state, independent of any other book.
fn check_book(book: &OrderBook) -> Result<(), TestCaseError> {
    check_structure(book)?;
    let position_sum: i128 = book.exposures().iter().map(|(_, e)| e.position as i128).sum();
    prop_assert_eq!(position_sum, 0, "positions do not net to zero");
    Ok(())
}

/// The book's views agree with each other: not crossed, priority order, level totals, open
/// quantities per account.
fn check_structure(book: &OrderBook) -> Result<(), TestCaseError> {
    let bbo = book.bbo();
    if let (Some((bid, _)), Some((ask, _))) = (bbo.bid, bbo.ask) {
        prop_assert!(bid < ask, "crossed book: bid {} >= ask {}", bid, ask);
    }
    let orders = book.resting_orders();
    prop_assert_eq!(orders.len(), book.order_count());
    // Priority order: bids by falling price, then asks by rising price.
    for pair in orders.windows(2) {
        let ok = match (pair[0].side, pair[1].side) {
            (Side::Buy, Side::Buy) => pair[0].price >= pair[1].price,
            (Side::Sell, Side::Sell) => pair[0].price <= pair[1].price,
            (Side::Buy, Side::Sell) => true,
            (Side::Sell, Side::Buy) => false,
        };
        prop_assert!(ok, "resting orders out of priority order: {:?}", pair);
    }
    let mut levels: BTreeMap<(u8, Price), Qty> = BTreeMap::new();
    let mut open: BTreeMap<AccountId, (Qty, Qty)> = BTreeMap::new();
    for order in &orders {
        prop_assert!(order.qty > 0 && order.qty <= MAX_QTY && order.price > 0 && order.price <= MAX_PRICE);
        prop_assert_eq!(book.order(order.order_id), Some(*order));
        *levels.entry((order.side as u8, order.price)).or_default() += order.qty;
        let entry = open.entry(order.account).or_default();
        match order.side {
            Side::Buy => entry.0 += order.qty,
            Side::Sell => entry.1 += order.qty,
        }
    }
    prop_assert_eq!(levels.len(), book.level_count());
    let depth = book.depth(usize::MAX);
    let level_sum = |side: Side| -> Vec<(Price, Qty)> {
        levels.iter().filter(|((s, _), _)| *s == side as u8).map(|((_, p), q)| (*p, *q)).collect()
    };
    let mut bids = level_sum(Side::Buy);
    bids.reverse();
    prop_assert_eq!(&depth.bids, &bids, "bid levels vs the sum of resting orders");
    prop_assert_eq!(&depth.asks, &level_sum(Side::Sell), "ask levels vs the sum of resting orders");
    prop_assert_eq!(bbo.bid, depth.bids.first().copied());
    prop_assert_eq!(bbo.ask, depth.asks.first().copied());
    let exposures = book.exposures();
    for (account, exposure) in &exposures {
        let (buy, sell) = open.get(account).copied().unwrap_or_default();
        prop_assert_eq!((exposure.open_buy, exposure.open_sell), (buy, sell), "open quantity of account {}", account);
        prop_assert_eq!(book.exposure(*account), *exposure);
    }
    for (account, (buy, sell)) in open {
        prop_assert!(exposures.iter().any(|(a, e)| *a == account && e.open_buy == buy && e.open_sell == sell));
    }
    Ok(())
}

fn check_same(step: usize, book: &OrderBook, reference: &ReferenceBook) -> Result<(), TestCaseError> {
    prop_assert_eq!(book.seq(), reference.seq(), "seq after command {}", step);
    prop_assert_eq!(book.is_halted(), reference.is_halted());
    prop_assert_eq!(book.last_order_id(), reference.last_order_id());
    prop_assert_eq!(book.resting_orders(), reference.resting_orders(), "resting orders (FIFO) after command {}", step);
    prop_assert_eq!(book.bbo(), reference.bbo());
    prop_assert_eq!(book.depth(10), reference.depth(10));
    prop_assert_eq!(book.exposures(), reference.exposures(), "exposures after command {}", step);
    check_queue_positions(step, book, reference)?;
    Ok(())
}

/// Every resting order's queue position against the reference's FIFO: the orders before it at
/// its side and price, and the level's totals.
fn check_queue_positions(step: usize, book: &OrderBook, reference: &ReferenceBook) -> Result<(), TestCaseError> {
    let fifo = reference.resting_orders();
    let ids: Vec<OrderId> = fifo.iter().map(|o| o.order_id).collect();
    let positions = book.queue_positions(&ids);
    for (index, order) in fifo.iter().enumerate() {
        let same_level = |o: &&RestingOrder| o.side == order.side && o.price == order.price;
        let ahead: Vec<&RestingOrder> = fifo[..index].iter().filter(same_level).collect();
        let level: Vec<&RestingOrder> = fifo.iter().filter(same_level).collect();
        let expected = QueuePosition {
            order_id: order.order_id,
            side: order.side,
            price: order.price,
            qty: order.qty,
            qty_ahead: ahead.iter().map(|o| o.qty).sum(),
            orders_ahead: ahead.len() as u32,
            level_qty: level.iter().map(|o| o.qty).sum(),
            level_orders: level.len() as u32,
        };
        prop_assert_eq!(
            positions[index],
            Some(expected),
            "queue position of {} after command {}",
            order.order_id,
            step
        );
    }
    prop_assert_eq!(book.queue_position(u64::MAX), None);
    for side in [Side::Buy, Side::Sell] {
        let queues = book.level_queues(side, 3, 2);
        let depth = book.depth(3);
        let levels = if side == Side::Buy { &depth.bids } else { &depth.asks };
        prop_assert_eq!(queues.len(), levels.len());
        for (queue, &(price, total)) in queues.iter().zip(levels) {
            prop_assert_eq!((queue.price, queue.total), (price, total));
            let listed: Vec<(OrderId, Qty)> = fifo
                .iter()
                .filter(|o| o.side == side && o.price == price)
                .take(2)
                .map(|o| (o.order_id, o.qty))
                .collect();
            prop_assert_eq!(&queue.orders, &listed);
        }
    }
    Ok(())
}

/// Runs the commands through both books, comparing every event and checking every invariant.
fn run_against_reference(commands: &[(u64, Command)]) -> Result<(), TestCaseError> {
    let mut book = OrderBook::new("TEST");
    let mut reference = ReferenceBook::new();
    let mut ledger = Ledger::new();
    let mut out = Vec::new();
    for (step, (at, command)) in commands.iter().enumerate() {
        // The entry's time first, as `apply_entry` does: it may end a pause.
        out.clear();
        book.advance_clock(*at, &mut out);
        prop_assert_eq!(&out, &reference.advance_clock(*at), "clock before command {}", step);
        ledger.absorb(&Command::Clock, &out)?;
        prop_assert_eq!(book.is_paused(), reference.is_paused());
        out.clear();
        book.apply(command, &mut out);
        let expected = reference.apply(command);
        prop_assert_eq!(&out, &expected, "events of command {}: {:?}", step, command);
        ledger.absorb(command, &out)?;
        ledger.check_against(&book)?;
        check_book(&book)?;
        check_same(step, &book, &reference)?;
    }
    Ok(())
}

// ----- the properties -----------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn engine_matches_reference_and_keeps_invariants(scenario in scenario(300)) {
        let commands = concretize_timed(&scenario);
        run_against_reference(&commands)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Snapshot → restore → continue gives the same events and state hashes as never stopping.
    #[test]
    fn snapshot_restore_continue_equals_never_stopping(
        scenario in scenario(250),
        cuts in prop::collection::vec(any::<Index>(), 1..4),
    ) {
        let commands = concretize_timed(&scenario);
        let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(commands.len() + 1)).collect();
        cut_points.sort_unstable();
        let mut straight = OrderBook::new("SNAP");
        let mut resumed = OrderBook::new("SNAP");
        for step in 0..=commands.len() {
            while cut_points.first() == Some(&step) {
                cut_points.remove(0);
                let bytes = resumed.snapshot();
                resumed = OrderBook::restore(&bytes).map_err(|e| TestCaseError::fail(format!("restore: {e}")))?;
                prop_assert_eq!(resumed.snapshot(), bytes, "snapshot of a restored book differs");
                prop_assert_eq!(resumed.state_hash(), straight.state_hash());
                check_book(&resumed)?;
                prop_assert_eq!(resumed.resting_orders(), straight.resting_orders());
                prop_assert_eq!(resumed.exposures(), straight.exposures());
                prop_assert_eq!(resumed.symbol(), "SNAP");
            }
            let Some((at, command)) = commands.get(step) else { break };
            let a = apply_at_collect(&mut straight, *at, command);
            let b = apply_at_collect(&mut resumed, *at, command);
            prop_assert_eq!(a, b, "events of command {} after restoring", step);
            prop_assert_eq!(straight.state_hash(), resumed.state_hash(), "state hash after command {}", step);
        }
    }

    /// A book rebuilt by replaying the same commands hashes and snapshots identically
    /// (determinism), and the hash moves when the state does.
    #[test]
    fn replay_is_deterministic(scenario in scenario(150)) {
        let commands = concretize_timed(&scenario);
        let mut a = OrderBook::new("DET");
        let mut b = OrderBook::with_capacity("DET", 1024);
        let mut previous = a.state_hash();
        for (at, command) in &commands {
            let events_a = apply_at_collect(&mut a, *at, command);
            prop_assert_eq!(&events_a, &apply_at_collect(&mut b, *at, command));
            let hash = a.state_hash();
            prop_assert_eq!(hash, b.state_hash());
            // Every command but a CLOCK that ends no pause emits an event, so the sequence (hence
            // the hash) moves.
            if !events_a.is_empty() {
                prop_assert_ne!(hash, previous);
            }
            previous = hash;
        }
        prop_assert_eq!(a.snapshot(), b.snapshot());
    }
}

// ----- corrupted snapshots ------------------------------------------------------------------------

/// A snapshot of a book that went through some random commands.
fn some_snapshot(scenario: &Scenario) -> Vec<u8> {
    let mut book = OrderBook::new("CORRUPT");
    for command in concretize(scenario) {
        book.apply_collect(&command);
    }
    book.snapshot()
}

/// Replaces the trailing checksum so that a tampered body reaches the decoder and the validator.
fn resign(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 8 {
        bytes.truncate(bytes.len() - 8);
    }
    let checksum = xxhash_rust::xxh3::xxh3_64(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// If a tampered snapshot restores at all, the book must be sound and keep working. (Positions
/// need not net to zero: restore does not check that, so tampered positions get through.)
fn exercise_restored(book: &mut OrderBook) -> Result<(), TestCaseError> {
    check_structure(book)?;
    let first = book.last_order_id().saturating_add(1);
    let probes = [
        Command::New(NewOrder::limit(first, 1, Side::Buy, 100, 5)),
        Command::New(NewOrder::market(first.saturating_add(1), 2, Side::Sell, 50)),
        Command::New(NewOrder::market(first.saturating_add(2), 1, Side::Buy, 50)),
        Command::Reset,
    ];
    if book.seq() > u64::MAX - 1_000 {
        // Sequence numbers near the top of u64 are out of reach of any real book.
        return Ok(());
    }
    for command in probes {
        book.apply_collect(&command);
        check_structure(book)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn garbage_is_not_a_snapshot(bytes in prop::collection::vec(any::<u8>(), 0..300), with_header in any::<bool>()) {
        let mut bytes = bytes;
        if with_header {
            let mut framed = b"FBSNAP\x01\x00".to_vec();
            framed.extend_from_slice(&bytes);
            bytes = framed;
        }
        prop_assert!(OrderBook::restore(&bytes).is_err());
    }

    #[test]
    fn truncated_or_flipped_snapshots_are_rejected(
        scenario in scenario(80),
        cut in any::<Index>(),
        flips in prop::collection::vec((any::<Index>(), 0u8..8), 1..4),
    ) {
        let bytes = some_snapshot(&scenario);
        prop_assert!(OrderBook::restore(&bytes).is_ok());
        // Every truncation fails, not just a random one: snapshots are small.
        for len in 0..bytes.len() {
            prop_assert!(OrderBook::restore(&bytes[..len]).is_err(), "truncated to {} of {} bytes", len, bytes.len());
        }
        let mut longer = bytes.clone();
        longer.push(cut.index(256) as u8);
        prop_assert!(OrderBook::restore(&longer).is_err());
        let mut flipped = bytes.clone();
        for (at, bit) in &flips {
            flipped[at.index(bytes.len())] ^= 1 << bit;
        }
        if flipped != bytes {
            prop_assert!(OrderBook::restore(&flipped).is_err());
        }
    }

    /// With a valid checksum over tampered content, restore may accept the content (it can be a
    /// legal book) but must never panic, and what it accepts must be a sound book.
    #[test]
    fn resigned_tampered_snapshots_never_panic(
        scenario in scenario(80),
        flips in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
        cut in any::<Index>(),
    ) {
        let bytes = some_snapshot(&scenario);
        let header = 8;
        let body_len = bytes.len() - header - 8;
        let mut tampered = bytes.clone();
        for (at, value) in &flips {
            tampered[header + at.index(body_len.max(1))] ^= value | 1;
        }
        for candidate in [resign(tampered), resign(bytes[..header + cut.index(body_len.max(1))].to_vec())] {
            if let Ok(mut book) = OrderBook::restore(&candidate) {
                exercise_restored(&mut book)?;
            }
        }
    }
}

// ----- the reference on its own -------------------------------------------------------------------
//
// The differential test only shows that the engine and the reference agree; these pin the
// reference (and so the engine) to the documented semantics on the trickiest event orders.

fn run_both(commands: &[Command]) -> Vec<EventKind> {
    let mut book = OrderBook::new("WALK");
    let mut reference = ReferenceBook::new();
    let mut kinds = Vec::new();
    for command in commands {
        let events = book.apply_collect(command);
        assert_eq!(events, reference.apply(command), "engine vs reference on {command:?}");
        kinds.extend(events.iter().map(|e| e.kind));
    }
    assert_eq!(book.resting_orders(), reference.resting_orders());
    kinds
}

fn cancelled(
    order_id: OrderId,
    account: AccountId,
    side: Side,
    price: Price,
    qty: Qty,
    reason: CancelReason,
) -> EventKind {
    EventKind::Cancelled { order_id, account, side, price, qty, reason }
}

fn level(side: Side, price: Price, qty: Qty) -> EventKind {
    EventKind::Level { side, price, qty }
}

#[allow(clippy::too_many_arguments)]
fn trade(
    maker: (OrderId, AccountId),
    taker: (OrderId, AccountId),
    price: Price,
    qty: Qty,
    aggressor: Side,
    maker_remaining: Qty,
    taker_remaining: Qty,
) -> EventKind {
    EventKind::Trade {
        maker_order_id: maker.0,
        maker_account: maker.1,
        taker_order_id: taker.0,
        taker_account: taker.1,
        price,
        qty,
        aggressor,
        maker_remaining,
        taker_remaining,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
    }
}

fn accepted(order: &NewOrder) -> EventKind {
    EventKind::Accepted {
        order_id: order.order_id,
        account: order.account,
        side: order.side,
        order_type: order.order_type,
        tif: order.tif,
        price: if order.order_type == OrderType::Limit { order.price } else { 0 },
        qty: order.qty,
        post_only: order.post_only,
        client_ref: order.client_ref,
    }
}

/// Resting book used by the walkthroughs: asks 101 [#1 acct 7 x2, #2 acct 8 x3],
/// 102 [#3 acct 8 x4, #4 acct 7 x5].
fn two_ask_levels() -> Vec<Command> {
    vec![
        Command::New(NewOrder::limit(1, 7, Side::Sell, 101, 2)),
        Command::New(NewOrder::limit(2, 8, Side::Sell, 101, 3)),
        Command::New(NewOrder::limit(3, 8, Side::Sell, 102, 4)),
        Command::New(NewOrder::limit(4, 7, Side::Sell, 102, 5)),
    ]
}

#[test]
fn stp_cancel_both_cancels_the_maker_then_stops() {
    let taker = NewOrder::limit(5, 7, Side::Buy, 105, 10).with_stp(StpMode::CancelBoth);
    let mut commands = two_ask_levels();
    commands.push(Command::New(taker));
    let kinds = run_both(&commands);
    assert_eq!(
        kinds[kinds.len() - 4..],
        [
            accepted(&taker),
            cancelled(1, 7, Side::Sell, 101, 2, CancelReason::SelfTrade),
            level(Side::Sell, 101, 3),
            cancelled(5, 7, Side::Buy, 105, 10, CancelReason::SelfTrade),
        ]
    );
}

#[test]
fn stp_cancel_oldest_cancels_own_makers_and_keeps_matching() {
    let taker = NewOrder::limit(5, 7, Side::Buy, 105, 10).with_stp(StpMode::CancelOldest);
    let mut commands = two_ask_levels();
    commands.push(Command::New(taker));
    let kinds = run_both(&commands);
    assert_eq!(
        kinds[kinds.len() - 8..],
        [
            accepted(&taker),
            cancelled(1, 7, Side::Sell, 101, 2, CancelReason::SelfTrade),
            trade((2, 8), (5, 7), 101, 3, Side::Buy, 0, 7),
            level(Side::Sell, 101, 0),
            trade((3, 8), (5, 7), 102, 4, Side::Buy, 0, 3),
            cancelled(4, 7, Side::Sell, 102, 5, CancelReason::SelfTrade),
            level(Side::Sell, 102, 0),
            // Nothing left to cross: the GTC remainder rests.
            level(Side::Buy, 105, 3),
        ]
    );
}

#[test]
fn fok_counts_only_liquidity_stp_lets_it_take() {
    // 9 lots of other accounts' asks, but account 7's own order sits in front at 101.
    let newest = NewOrder::limit(5, 7, Side::Buy, 102, 7).with_tif(TimeInForce::Fok).with_stp(StpMode::CancelNewest);
    let oldest = NewOrder::limit(6, 7, Side::Buy, 102, 7).with_tif(TimeInForce::Fok).with_stp(StpMode::CancelOldest);
    let mut commands = two_ask_levels();
    commands.extend([Command::New(newest), Command::New(oldest)]);
    let kinds = run_both(&commands);
    assert_eq!(
        kinds[kinds.len() - 8..],
        [
            accepted(&newest),
            cancelled(5, 7, Side::Buy, 102, 7, CancelReason::FokUnfillable),
            accepted(&oldest),
            cancelled(1, 7, Side::Sell, 101, 2, CancelReason::SelfTrade),
            trade((2, 8), (6, 7), 101, 3, Side::Buy, 0, 4),
            level(Side::Sell, 101, 0),
            trade((3, 8), (6, 7), 102, 4, Side::Buy, 0, 0),
            // Filled: no remainder event; order 4 (account 7) was never reached.
            level(Side::Sell, 102, 5),
        ]
    );
}

#[test]
fn replace_into_a_cross_trades_at_the_makers_price_and_rests_the_rest() {
    let mut commands = two_ask_levels();
    commands.push(Command::New(NewOrder::limit(5, 9, Side::Buy, 99, 4)));
    commands.push(Command::Replace { order_id: 5, account: 9, price: Some(101), qty: Some(6) });
    let kinds = run_both(&commands);
    assert_eq!(
        kinds[kinds.len() - 6..],
        [
            EventKind::Replaced {
                order_id: 5,
                account: 9,
                side: Side::Buy,
                old_price: 99,
                old_qty: 4,
                price: 101,
                qty: 6,
                kept_priority: false
            },
            level(Side::Buy, 99, 0),
            trade((1, 7), (5, 9), 101, 2, Side::Buy, 0, 4),
            trade((2, 8), (5, 9), 101, 3, Side::Buy, 0, 1),
            level(Side::Sell, 101, 0),
            level(Side::Buy, 101, 1),
        ]
    );
}

#[test]
fn reset_cancels_bids_then_asks_best_first_fifo_with_a_level_per_level() {
    let mut commands = two_ask_levels();
    commands.push(Command::New(NewOrder::limit(5, 9, Side::Buy, 99, 4)));
    commands.push(Command::New(NewOrder::limit(6, 8, Side::Buy, 100, 1)));
    commands.push(Command::New(NewOrder::market(7, 9, Side::Buy, 1)));
    commands.push(Command::Halt);
    commands.push(Command::Reset);
    let kinds = run_both(&commands);
    assert_eq!(
        kinds[kinds.len() - 12..],
        [
            EventKind::Status { status: BookStatus::Halted },
            cancelled(6, 8, Side::Buy, 100, 1, CancelReason::Reset),
            level(Side::Buy, 100, 0),
            cancelled(5, 9, Side::Buy, 99, 4, CancelReason::Reset),
            level(Side::Buy, 99, 0),
            cancelled(1, 7, Side::Sell, 101, 1, CancelReason::Reset),
            cancelled(2, 8, Side::Sell, 101, 3, CancelReason::Reset),
            level(Side::Sell, 101, 0),
            cancelled(3, 8, Side::Sell, 102, 4, CancelReason::Reset),
            cancelled(4, 7, Side::Sell, 102, 5, CancelReason::Reset),
            level(Side::Sell, 102, 0),
            EventKind::Status { status: BookStatus::Reset },
        ]
    );
    let mut book = OrderBook::new("WALK");
    for command in &commands {
        book.apply_collect(command);
    }
    // Reset keeps the halt and the id high-water mark, and zeroes positions.
    assert!(book.is_halted());
    assert_eq!(book.last_order_id(), 7);
    assert!(book.exposures().is_empty());
    assert_eq!(book.seq(), kinds.len() as Seq);
}

/// The random scenarios reach every outcome of the price band, so the comparison with the
/// reference book above covers the band's rules too (not only scenarios that never touch them).
#[test]
fn the_generated_scenarios_reach_every_band_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let scenario = scenario(300).new_tree(&mut runner).expect("a scenario").current();
        let mut book = ReferenceBook::new();
        for command in concretize(&scenario) {
            for event in book.apply(&command) {
                match event.kind {
                    EventKind::Rejected { reason: RejectReason::PriceOutOfBand, .. } => seen.insert("out of band"),
                    EventKind::Rejected { reason: RejectReason::InvalidBand, .. } => seen.insert("invalid band"),
                    EventKind::Cancelled { reason: CancelReason::PriceBand, .. } => seen.insert("stopped at the edge"),
                    EventKind::Status { status: BookStatus::Band } => seen.insert("band set"),
                    _ => false,
                };
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["band set", "invalid band", "out of band", "stopped at the edge"]
    );
}

/// Likewise for the volatility guard and the fees: the scenarios pause books, end pauses, refuse
/// orders during them, and set (and refuse) both rules.
#[test]
fn the_generated_scenarios_reach_every_volatility_and_fee_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let scenario = scenario(300).new_tree(&mut runner).expect("a scenario").current();
        let mut book = ReferenceBook::new();
        for (at, command) in concretize_timed(&scenario) {
            for event in reference_at(&mut book, at, &command) {
                match event.kind {
                    EventKind::Rejected { reason: RejectReason::VolatilityPause, .. } => {
                        seen.insert("refused in a pause")
                    }
                    EventKind::Rejected { reason: RejectReason::InvalidVolatility, .. } => seen.insert("invalid guard"),
                    EventKind::Rejected { reason: RejectReason::InvalidFees, .. } => seen.insert("invalid fees"),
                    EventKind::Status { status: BookStatus::Paused } => seen.insert("paused"),
                    EventKind::Status { status: BookStatus::PauseEnded } => seen.insert("pause ended"),
                    EventKind::Trade { taker_fee_bps, .. } if taker_fee_bps != 0 => seen.insert("trade with a fee"),
                    _ => false,
                };
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["invalid fees", "invalid guard", "pause ended", "paused", "refused in a pause", "trade with a fee"]
    );
}
