//! The field's standard workloads: one symbol, about two million messages on integer ticks, and
//! a price that stands still, drifts, swings ±25 % or ±40 % over the run, or crashes through the
//! book and recovers. Built here after the shape public matching-engine harnesses use (none of
//! their code): about 15 % of new orders IOC, modifies among the messages, about 95 % of the
//! orders that rest eventually cancelled, about 2 % of cancels and modifies naming an order that
//! is gone, and every acknowledgement, fill and cancel reported.
//!
//! Like the book-shape regimes, the whole list is generated in advance while a scratch book runs
//! it, so each timed run can be checked against the scratch book's events and state hash.
//!
//! The reports are measured two ways: in process (the events land in a reused `Vec`, as in the
//! other regimes) and handed off (`handoff_run`): the engine thread appends each message's events
//! to a batch and passes full batches through a bounded channel to a second thread, which reads
//! every event; empty batches come back through a second channel, so nothing allocates in the
//! loop. The timed window ends when the consumer has read the last event.

use super::{Live, Rng, Workload};
use engine_rs::{Command, Event, EventKind, NewOrder, OrderBook, RejectReason, Side, TimeInForce};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};
use xxhash_rust::xxh3::Xxh3;

/// How the reference price moves over the run.
#[derive(Clone, Copy)]
pub(crate) enum PricePath {
    /// It stays where it started.
    Static,
    /// A random walk: a tick either way with probability `per_10k` per message.
    Drift { per_10k: u64 },
    /// One full sine wave over the run: up by `pct` of the start price, down by as much, back.
    Swing { pct: f64 },
    /// Still, then down by `pct` of the price over `fall` of the run (sellers walking through
    /// the bids), back up over `recover`, still again.
    Crash { pct: f64, at: f64, fall: f64, recover: f64 },
}

#[derive(Clone, Copy)]
pub(crate) struct FieldRegime {
    pub name: &'static str,
    pub what: &'static str,
    pub path: PricePath,
}

pub(crate) const FIELD_REGIMES: [FieldRegime; 5] = [
    FieldRegime { name: "static", what: "field workload, the price still", path: PricePath::Static },
    FieldRegime {
        name: "drift",
        what: "field workload, the price on a random walk",
        path: PricePath::Drift { per_10k: 25 },
    },
    FieldRegime {
        name: "swing25",
        what: "field workload, the price swinging +-25 % over the run",
        path: PricePath::Swing { pct: 0.25 },
    },
    FieldRegime {
        name: "swing40",
        what: "field workload, the price swinging +-40 % over the run",
        path: PricePath::Swing { pct: 0.40 },
    },
    FieldRegime {
        name: "crash",
        what: "field workload, a flash crash of 30 % through the book and back",
        path: PricePath::Crash { pct: 0.30, at: 0.45, fall: 0.01, recover: 0.09 },
    },
];

/// The start price in ticks (10.00 at a cent tick).
const START: f64 = 1_000.0;
/// Resting orders the book is held near (within `HOLD_PCT`).
const TARGET_ORDERS: usize = 10_000;
const HOLD_PCT: usize = 5;
/// Per 10k messages: NEW, CANCEL, the rest MODIFY (replace).
const NEW_PER_10K: u64 = 4_700;
const CANCEL_PER_10K: u64 = 3_800;
/// Per 10k NEWs: IOC (a fifth of them market orders).
const IOC_PER_10K: u64 = 1_500;
/// Per 10k cancels and modifies: the share naming an order that has already left the book.
const GONE_PER_10K: u64 = 200;
/// Makers pull the quotes a move is about to reach: a cancel takes an order at the touch when the
/// touch is within this many ticks of the reference (or past it), else a random resting order.
/// That is why most resting orders are cancelled rather than filled even while the price travels.
const AT_RISK_TICKS: i64 = 1;
const ACCOUNTS: u64 = 500;
/// Passive orders sit `1 + Exp(mean)` ticks behind the reference price (capped).
const PASSIVE_MEAN_TICKS: f64 = 30.0;
const PASSIVE_MAX_TICKS: i64 = 500;

struct FieldGenerator {
    regime: FieldRegime,
    rng: Rng,
    book: OrderBook,
    live: Live,
    /// The last orders to leave the book (filled or cancelled), for the cancels and modifies that
    /// name a gone order; a ring of `GONE_RING` entries.
    gone: Vec<(u64, u64)>,
    gone_next: usize,
    reference: f64,
    /// In a crash's fall: the makers are too slow to pull their quotes, so it walks the book.
    falling: bool,
    next_id: u64,
    out: Vec<Event>,
    reject_reasons: Vec<(RejectReason, u64)>,
    digest: Xxh3,
    /// Orders that rested, and of those how many left by a cancel (user) rather than a fill.
    rested: u64,
    cancelled: u64,
    /// Live orders by side and price, and each one's key: the orders at the touch.
    at_price: rustc_hash::FxHashMap<(Side, i64), Vec<u64>>,
    key_of: rustc_hash::FxHashMap<u64, (Side, i64, u64)>,
}

const GONE_RING: usize = 4_096;

impl FieldGenerator {
    fn new(regime: FieldRegime, seed: u64) -> Self {
        FieldGenerator {
            regime,
            rng: Rng::new(seed),
            book: OrderBook::with_capacity("BENCH", TARGET_ORDERS * 2),
            live: Live::default(),
            gone: Vec::with_capacity(GONE_RING),
            gone_next: 0,
            reference: START,
            falling: false,
            next_id: 1,
            out: Vec::with_capacity(256),
            reject_reasons: Vec::new(),
            digest: Xxh3::new(),
            rested: 0,
            cancelled: 0,
            at_price: Default::default(),
            key_of: Default::default(),
        }
    }

    /// Moves the reference price to where the path has it after `done` of `total` messages.
    fn move_reference(&mut self, done: usize, total: usize) {
        let t = done as f64 / total.max(1) as f64;
        self.falling = matches!(self.regime.path, PricePath::Crash { at, fall, .. } if t >= at && t < at + fall);
        self.reference = match self.regime.path {
            PricePath::Static => START,
            PricePath::Drift { per_10k } => {
                if self.rng.chance(per_10k) {
                    let step = if self.rng.below(2) == 0 { -1.0 } else { 1.0 };
                    (self.reference + step).max(START / 2.0)
                } else {
                    self.reference
                }
            }
            PricePath::Swing { pct } => START * (1.0 + pct * (2.0 * std::f64::consts::PI * t).sin()),
            PricePath::Crash { pct, at, fall, recover } => {
                let low = START * (1.0 - pct);
                if t < at || t >= at + fall + recover {
                    START
                } else if t < at + fall {
                    START + (low - START) * (t - at) / fall
                } else {
                    low + (START - low) * (t - at - fall) / recover
                }
            }
        };
    }

    fn reference_ticks(&self) -> i64 {
        self.reference.round() as i64
    }

    fn passive_price(&mut self, side: Side) -> i64 {
        let ticks = (-(1.0 - self.rng.unit()).ln() * PASSIVE_MEAN_TICKS) as i64;
        let offset = 1 + ticks.min(PASSIVE_MAX_TICKS - 1);
        match side {
            Side::Buy => (self.reference_ticks() - offset).max(1),
            Side::Sell => self.reference_ticks() + offset,
        }
    }

    fn qty(&mut self) -> i64 {
        if self.rng.chance(9_000) {
            1 + self.rng.below(100) as i64
        } else {
            100 + self.rng.below(900) as i64
        }
    }

    fn side(&mut self) -> Side {
        if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// The cancel's target: 2 % of the time an order already gone; else an order at a touch the
    /// reference has reached (the side it reaches further), else a random resting order.
    fn cancel_target(&mut self) -> (u64, u64) {
        if !self.gone.is_empty() && self.rng.chance(GONE_PER_10K) {
            return self.gone[self.rng.below(self.gone.len() as u64) as usize];
        }
        let reference = self.reference_ticks();
        let bbo = self.book.bbo();
        let bid_room = bbo.bid.map_or(i64::MAX, |(bid, _)| reference - bid);
        let ask_room = bbo.ask.map_or(i64::MAX, |(ask, _)| ask - reference);
        let (side, price, room) = if bid_room <= ask_room {
            (Side::Buy, bbo.bid.map_or(0, |b| b.0), bid_room)
        } else {
            (Side::Sell, bbo.ask.map_or(0, |a| a.0), ask_room)
        };
        if room <= AT_RISK_TICKS && !self.falling {
            if let Some(ids) = self.at_price.get(&(side, price)).filter(|ids| !ids.is_empty()) {
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                return (id, self.key_of[&id].2);
            }
        }
        self.live.pick(&mut self.rng)
    }

    fn index_remove(&mut self, id: u64) {
        if let Some((side, price, _)) = self.key_of.remove(&id) {
            let ids = self.at_price.get_mut(&(side, price)).expect("indexed");
            let at = ids.iter().position(|&x| x == id).expect("indexed");
            ids.swap_remove(at);
        }
    }

    fn index_add(&mut self, id: u64, account: u64) {
        if let Some(order) = self.book.order(id) {
            self.key_of.insert(id, (order.side, order.price, account));
            self.at_price.entry((order.side, order.price)).or_default().push(id);
        }
    }

    fn new_order(&mut self, passive_only: bool) -> Command {
        let id = self.next_id;
        self.next_id += 1;
        let account = 1 + self.rng.below(ACCOUNTS);
        let mut side = self.side();
        if !passive_only && self.rng.chance(IOC_PER_10K) {
            let mut qty = 1 + self.rng.below(30) as i64;
            if self.falling {
                // The crash: large sells that sweep many levels of bids.
                side = Side::Sell;
                qty = 500 + self.rng.below(2_000) as i64;
            }
            if self.rng.chance(2_000) {
                return Command::New(NewOrder::market(id, account, side, qty));
            }
            // Through the reference by a few ticks: it takes what rests there.
            let through = self.rng.below(5) as i64;
            let price = match side {
                Side::Buy => self.reference_ticks() + through,
                Side::Sell => (self.reference_ticks() - through).max(1),
            };
            return Command::New(NewOrder::limit(id, account, side, price, qty).with_tif(TimeInForce::Ioc));
        }
        // A GTC order behind the reference. When the reference has moved past resting orders of
        // the other side (a trend, the crash), it trades with them first: the market walking.
        let price = self.passive_price(side);
        Command::New(NewOrder::limit(id, account, side, price, self.qty()))
    }

    /// A resting order's id and account, or (2 % of the time) one that has left the book.
    fn target(&mut self) -> (u64, u64) {
        if !self.gone.is_empty() && self.rng.chance(GONE_PER_10K) {
            return self.gone[self.rng.below(self.gone.len() as u64) as usize];
        }
        self.live.pick(&mut self.rng)
    }

    fn modify(&mut self) -> Command {
        let (order_id, account) = self.target();
        let (price, qty) = match self.book.order(order_id) {
            Some(order) => {
                let roll = self.rng.below(100);
                if roll < 50 {
                    // A new quantity: smaller keeps the order's place, larger loses it.
                    (None, Some(1 + self.rng.below(order.qty as u64 * 2) as i64))
                } else if roll < 80 {
                    let step = 1 + self.rng.below(3) as i64;
                    let price = if self.rng.below(2) == 0 { order.price - step } else { order.price + step };
                    (Some(price.max(1)), None)
                } else {
                    // Re-quoted near the reference, as a quote follows the market.
                    (Some(self.passive_price(order.side)), Some(self.qty()))
                }
            }
            None => (Some(self.reference_ticks()), Some(1)),
        };
        Command::Replace { order_id, account, price, qty }
    }

    fn steady(&mut self, done: usize, total: usize) -> Command {
        self.move_reference(done, total);
        let band = TARGET_ORDERS * HOLD_PCT / 100;
        let roll = self.rng.below(10_000);
        let mut new = roll < NEW_PER_10K;
        let cancel = !new && roll < NEW_PER_10K + CANCEL_PER_10K;
        if (cancel && self.live.len() < TARGET_ORDERS - band) || self.live.len() == 0 {
            new = true;
        } else if new && self.live.len() > TARGET_ORDERS + band {
            let (order_id, account) = self.cancel_target();
            return Command::Cancel { order_id, account };
        }
        if new {
            self.new_order(false)
        } else if cancel {
            let (order_id, account) = self.cancel_target();
            Command::Cancel { order_id, account }
        } else {
            self.modify()
        }
    }

    fn forget(&mut self, order_id: u64) {
        self.index_remove(order_id);
        if let Some(entry) = self.live.remove_entry(order_id) {
            if self.gone.len() < GONE_RING {
                self.gone.push(entry);
            } else {
                self.gone[self.gone_next] = entry;
                self.gone_next = (self.gone_next + 1) % GONE_RING;
            }
        }
    }

    /// Applies `command` to the scratch book; returns its events, trades and rejects.
    fn apply(&mut self, command: &Command) -> (u64, u64, u64) {
        self.out.clear();
        self.book.apply(command, &mut self.out);
        let (mut trades, mut rejects) = (0, 0);
        let mut buf = [0u8; 128];
        let out = std::mem::take(&mut self.out);
        for event in &out {
            self.digest.update(postcard::to_slice(event, &mut buf).expect("an event encodes in 128 bytes"));
            match event.kind {
                EventKind::Trade { maker_order_id, maker_remaining, .. } => {
                    trades += 1;
                    if maker_remaining == 0 {
                        self.forget(maker_order_id);
                    }
                }
                EventKind::Cancelled { order_id, .. } => {
                    if self.live.contains(order_id) {
                        self.cancelled += 1;
                    }
                    self.forget(order_id);
                }
                EventKind::Rejected { reason, .. } => {
                    rejects += 1;
                    match self.reject_reasons.iter_mut().find(|(r, _)| *r == reason) {
                        Some((_, n)) => *n += 1,
                        None => self.reject_reasons.push((reason, 1)),
                    }
                }
                _ => {}
            }
        }
        let events = out.len() as u64;
        self.out = out;
        let (id, account) = match *command {
            Command::New(ref order) => (order.order_id, order.account),
            Command::Replace { order_id, account, .. } => (order_id, account),
            _ => return (events, trades, rejects),
        };
        let rests = self.book.order(id).is_some();
        if rests && !self.live.contains(id) {
            self.rested += 1;
            self.live.add(id, account);
        } else if !rests {
            self.forget(id);
        }
        if rests {
            // A new order, or a replaced one that may have moved.
            self.index_remove(id);
            self.index_add(id, account);
        }
        (events, trades, rejects)
    }
}

/// What the field generator adds to a workload's report.
pub(crate) struct FieldStats {
    /// Of the orders that rested, the share that left by their owner's cancel (by the end, those
    /// still resting counted as neither).
    pub cancelled_of_rested: f64,
    /// Of cancels and modifies, the share naming an order no longer resting.
    pub gone_targets: f64,
    pub start_price: i64,
    pub low_price: i64,
    pub high_price: i64,
}

pub(crate) fn generate(regime: FieldRegime, seed: u64, measured_msgs: usize) -> (Workload, FieldStats) {
    let mut g = FieldGenerator::new(regime, seed);
    let mut setup = Vec::with_capacity(TARGET_ORDERS);
    while g.live.len() < TARGET_ORDERS {
        let command = g.new_order(true);
        g.apply(&command);
        setup.push(command);
    }
    let resting_start = (g.book.order_count(), g.book.level_count());
    g.reject_reasons.clear();
    let (rested0, cancelled0) = (g.rested, g.cancelled);
    let mut measured = Vec::with_capacity(measured_msgs);
    let (mut events, mut trades, mut rejects, mut ioc, mut gone) = (0, 0, 0, 0, 0u64);
    let mut mix = [0u64; 3];
    let (mut low, mut high) = (i64::MAX, 0);
    for done in 0..measured_msgs {
        let command = g.steady(done, measured_msgs);
        low = low.min(g.reference_ticks());
        high = high.max(g.reference_ticks());
        match command {
            Command::New(ref order) => {
                mix[0] += 1;
                ioc += (order.tif != TimeInForce::Gtc) as u64;
            }
            Command::Cancel { order_id, .. } | Command::Replace { order_id, .. } => {
                mix[if matches!(command, Command::Cancel { .. }) { 1 } else { 2 }] += 1;
                gone += g.book.order(order_id).is_none() as u64;
            }
            _ => {}
        }
        let (e, t, r) = g.apply(&command);
        events += e;
        trades += t;
        rejects += r;
        measured.push(command);
    }
    let stats = FieldStats {
        cancelled_of_rested: (g.cancelled - cancelled0) as f64 / (g.rested - rested0).max(1) as f64,
        gone_targets: gone as f64 / (mix[1] + mix[2]).max(1) as f64,
        start_price: START as i64,
        low_price: low,
        high_price: high,
    };
    let work = Workload {
        setup,
        measured,
        measured_events: events,
        final_hash: g.book.state_hash(),
        resting_start,
        resting_end: (g.book.order_count(), g.book.level_count()),
        mix,
        ioc,
        trades,
        rejects,
        reject_reasons: g.reject_reasons,
        events_digest: g.digest.digest(),
    };
    (work, stats)
}

// ----- the hand-off ---------------------------------------------------------------------------------

/// Events per batch handed to the consumer (about 24 kB of events), and batches in flight.
const BATCH_EVENTS: usize = 256;
const BATCHES: usize = 8;

/// What the consumer thread makes of the reports: a count and a checksum of every event, so that
/// it reads each one.
#[derive(Default)]
struct Consumed {
    events: u64,
    check: u64,
}

impl Consumed {
    fn read(&mut self, batch: &[Event]) {
        for event in batch {
            self.events += 1;
            let field = match event.kind {
                EventKind::Accepted { order_id, .. } => order_id,
                EventKind::Trade { qty, .. } => qty as u64,
                EventKind::Cancelled { qty, .. } => qty as u64,
                EventKind::Replaced { qty, .. } => qty as u64,
                EventKind::Rejected { order_id, .. } => order_id,
                EventKind::Level { qty, .. } => qty as u64,
                EventKind::Status { .. } => 1,
            };
            self.check = self.check.rotate_left(5) ^ event.seq ^ field;
        }
    }
}

/// A receive that spins a little, then blocks: a thread that owns its core would only spin, but on
/// a machine whose cores are shared a spinning waiter keeps the thread it waits for off the core
/// (measured here: hand-off runs fell from ~19M to ~1M messages/s whenever other work held the
/// other core); blocking lets the scheduler run it at once.
fn spin_recv<T>(rx: &Receiver<T>) -> Option<T> {
    for _ in 0..1 << 10 {
        match rx.try_recv() {
            Ok(value) => return Some(value),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
        }
    }
    rx.recv().ok()
}

struct Handoff {
    full: SyncSender<Vec<Event>>,
    empty: Receiver<Vec<Event>>,
    consumer: std::thread::JoinHandle<Consumed>,
}

impl Handoff {
    fn start() -> (Handoff, Vec<Event>) {
        let (full, full_rx) = sync_channel::<Vec<Event>>(BATCHES);
        let (empty_tx, empty) = sync_channel::<Vec<Event>>(BATCHES + 1);
        for _ in 0..BATCHES {
            empty_tx.send(Vec::with_capacity(BATCH_EVENTS + 256)).expect("the ring has room");
        }
        let consumer = std::thread::spawn(move || {
            let mut consumed = Consumed::default();
            while let Some(mut batch) = spin_recv(&full_rx) {
                consumed.read(&batch);
                batch.clear();
                let _ = empty_tx.send(batch);
            }
            consumed
        });
        (Handoff { full, empty, consumer }, Vec::with_capacity(BATCH_EVENTS + 256))
    }

    /// Hands `batch` over if it is full enough, returning the batch to fill next.
    #[inline]
    fn maybe_send(&self, batch: &mut Vec<Event>) {
        if batch.len() >= BATCH_EVENTS {
            let next = spin_recv(&self.empty).expect("the consumer is alive");
            self.full.send(std::mem::replace(batch, next)).expect("the consumer is alive");
        }
    }

    fn finish(self, batch: Vec<Event>) -> Consumed {
        self.full.send(batch).expect("the consumer is alive");
        drop(self.full);
        self.consumer.join().expect("the consumer thread")
    }
}

#[inline(never)]
fn handoff_loop(book: &mut OrderBook, commands: &[Command], handoff: &Handoff, batch: &mut Vec<Event>) {
    for command in commands {
        book.apply(command, batch);
        handoff.maybe_send(batch);
    }
}

/// One timed pass with the reports handed to a second thread; the window closes when that thread
/// has read them all.
pub(crate) fn handoff_run(work: &Workload, out: &mut Vec<Event>) -> Duration {
    let mut book = super::prepared_book(work, out);
    let (handoff, mut batch) = Handoff::start();
    let start = Instant::now();
    handoff_loop(&mut book, &work.measured, &handoff, &mut batch);
    let consumed = handoff.finish(batch);
    let elapsed = start.elapsed();
    assert_eq!(consumed.events, work.measured_events, "the consumer read different events");
    std::hint::black_box(consumed.check);
    assert_eq!(book.state_hash(), work.final_hash, "a hand-off run ended in a different state");
    elapsed
}

/// Per-message latency with the hand-off: the clock read around `apply` and the batch's hand-over
/// (which a message pays when its events fill a batch).
pub(crate) fn handoff_latency_run(work: &Workload, out: &mut Vec<Event>) -> Vec<u32> {
    let mut book = super::prepared_book(work, out);
    let (handoff, mut batch) = Handoff::start();
    let mut all = Vec::with_capacity(work.measured.len());
    for command in &work.measured {
        let t0 = Instant::now();
        book.apply(command, &mut batch);
        handoff.maybe_send(&mut batch);
        let t1 = Instant::now();
        all.push((t1 - t0).as_nanos().min(u32::MAX as u128) as u32);
    }
    let consumed = handoff.finish(batch);
    assert_eq!(consumed.events, work.measured_events, "the consumer read different events");
    all.sort_unstable();
    all
}
