//! `make bench-engine`: throughput and per-message latency of one `OrderBook`, single thread,
//! in process, with every command decoded in advance.
//!
//! For each regime (mixed, deep, wide) a seeded generator builds the whole command list before any
//! timing. It drives a scratch book while it generates and reads that book's events to know which
//! orders are live, so every cancel and replace names a resting order of its owner. The list has
//! two parts: a set-up (pre-fill to the regime's depth, then a warm-up of steady-state traffic) and
//! the measured messages. Every timed run starts from a fresh book, applies the set-up untimed, then
//! times the measured messages; at the end its state hash must equal the scratch book's, so each
//! run provably did the same work. Events go into one reused `Vec<Event>`, cleared every message.
//!
//! Throughput is the median of several runs without any per-message clock. Latency comes from a
//! separate pass that reads the clock around each `apply`; the clock's own cost is measured and
//! reported beside it (it is included in the latency figures, not subtracted).
//!
//! Output: a table per regime on stderr, one JSON line on stdout, and the same JSON written to
//! `bench/results/engine.json` at the workspace root.
//!
//! Options (arguments or environment):
//!   --quick             short run (BENCH_QUICK=1)
//!   --runs N            timed runs per regime (BENCH_RUNS)
//!   --msgs N            measured messages per regime (BENCH_MSGS)
//!   --regime NAME       only this regime; repeatable (BENCH_REGIMES=mixed,deep)
//!   --seed N            generator seed (BENCH_SEED)
//!   --no-write          do not write bench/results/engine.json

use engine_rs::{
    Command, CommandKind, Event, EventKind, NewOrder, OrderBook, RejectReason, Side, StpMode, TimeInForce,
};
use rustc_hash::FxHashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use xxhash_rust::xxh3::Xxh3;

#[path = "bench_engine/field.rs"]
mod field;
use field::{FieldRegime, FieldStats, FIELD_REGIMES};

const TARGET_MSGS_PER_S: f64 = 10_000_000.0;
const ACCOUNTS: u64 = 1_000;

// ----- deterministic random numbers ----------------------------------------------------------------

/// SplitMix64: tiny, fast, and good enough to drive a workload; the same seed gives the same run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// True with probability `per_10k / 10_000`.
    fn chance(&mut self, per_10k: u64) -> bool {
        self.below(10_000) < per_10k
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ----- regimes -------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Regime {
    name: &'static str,
    what: &'static str,
    /// Resting orders the pre-fill builds and the steady state keeps (within `BAND_PCT`).
    target_orders: usize,
    /// Passive orders: this share (per 10k) sit near the touch, exponentially distributed with
    /// mean `near_mean` ticks (capped at `near_max`); the rest are uniform over `1..=far_max` ticks
    /// from the mid.
    near_share: u64,
    near_mean: f64,
    near_max: i64,
    far_max: i64,
    /// The mid moves one tick with this probability (per 10k) per message...
    drift_per_10k: u64,
    /// ...within this many ticks of its start (`None`: a free random walk).
    drift_bound: Option<i64>,
    /// Steady-state messages applied (untimed) after the pre-fill, before the measured ones.
    warmup: usize,
}

const REGIMES: [Regime; 3] = [
    Regime {
        name: "mixed",
        what: "~10k resting orders mostly near the touch, mid on a free random walk",
        target_orders: 10_000,
        near_share: 9_000,
        near_mean: 6.0,
        near_max: 200,
        far_max: 500,
        drift_per_10k: 50,
        drift_bound: None,
        warmup: 1_000_000,
    },
    Regime {
        name: "deep",
        what: "~75k resting orders on ~60 levels (30 a side), mid wanders within +-2 ticks",
        target_orders: 75_000,
        near_share: 0,
        near_mean: 1.0,
        near_max: 1,
        far_max: 30,
        drift_per_10k: 100,
        drift_bound: Some(2),
        warmup: 500_000,
    },
    Regime {
        name: "wide",
        what: "~140k resting orders over ~10k levels (5k a side), mid wanders within +-20 ticks",
        target_orders: 140_000,
        near_share: 2_000,
        near_mean: 10.0,
        near_max: 200,
        far_max: 5_000,
        drift_per_10k: 100,
        drift_bound: Some(20),
        warmup: 500_000,
    },
];

/// Message mix per 10k: NEW, CANCEL, REPLACE (46/39/15); IOC share of NEW.
const NEW_PER_10K: u64 = 4_600;
const CANCEL_PER_10K: u64 = 3_900;
const IOC_PER_10K_OF_NEW: u64 = 1_500;
/// The book is held within this percentage of its target size: outside it the generator turns a
/// would-be NEW into a CANCEL or the reverse. The realised mix is measured and reported.
const BAND_PCT: usize = 2;
const START_MID: i64 = 1_000_000;

/// A generated workload: untimed set-up, then the measured messages.
struct Workload {
    setup: Vec<Command>,
    measured: Vec<Command>,
    /// Events the measured part produces and the state hash after it, from the scratch book.
    measured_events: u64,
    final_hash: u64,
    resting_start: (usize, usize),
    resting_end: (usize, usize),
    mix: [u64; 3],
    ioc: u64,
    trades: u64,
    rejects: u64,
    reject_reasons: Vec<(RejectReason, u64)>,
    /// xxh3 of every event the workload produces (set-up and measured), postcard-encoded: the same
    /// seed must give the same digest on any engine version whose semantics are unchanged.
    events_digest: u64,
}

/// The orders resting in the scratch book, with O(1) pick-at-random and remove.
#[derive(Default)]
struct Live {
    orders: Vec<(u64, u64)>,
    index: FxHashMap<u64, u32>,
}

impl Live {
    fn add(&mut self, id: u64, account: u64) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.index.entry(id) {
            slot.insert(self.orders.len() as u32);
            self.orders.push((id, account));
        }
    }
    fn remove(&mut self, id: u64) {
        self.remove_entry(id);
    }
    /// Removes `id`, returning its `(id, account)` if it was live.
    fn remove_entry(&mut self, id: u64) -> Option<(u64, u64)> {
        let i = self.index.remove(&id)?;
        let entry = self.orders.swap_remove(i as usize);
        if let Some(&(moved, _)) = self.orders.get(i as usize) {
            self.index.insert(moved, i);
        }
        Some(entry)
    }
    fn contains(&self, id: u64) -> bool {
        self.index.contains_key(&id)
    }
    fn pick(&self, rng: &mut Rng) -> (u64, u64) {
        self.orders[rng.below(self.orders.len() as u64) as usize]
    }
    fn len(&self) -> usize {
        self.orders.len()
    }
}

struct Generator {
    regime: Regime,
    rng: Rng,
    book: OrderBook,
    live: Live,
    mid: i64,
    next_id: u64,
    out: Vec<Event>,
    reject_reasons: Vec<(RejectReason, u64)>,
    digest: Xxh3,
}

impl Generator {
    fn new(regime: Regime, seed: u64) -> Self {
        Generator {
            regime,
            rng: Rng::new(seed),
            book: OrderBook::with_capacity("BENCH", regime.target_orders * 2),
            live: Live::default(),
            mid: START_MID,
            next_id: 1,
            out: Vec::with_capacity(64),
            reject_reasons: Vec::new(),
            digest: Xxh3::new(),
        }
    }

    fn account(&mut self) -> u64 {
        1 + self.rng.below(ACCOUNTS)
    }

    fn side(&mut self) -> Side {
        if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn qty(&mut self) -> i64 {
        if self.rng.chance(8_000) {
            1 + self.rng.below(100) as i64
        } else {
            1 + self.rng.below(1_000) as i64
        }
    }

    /// Ticks away from the mid for a passive order.
    fn offset(&mut self) -> i64 {
        let r = self.regime;
        if self.rng.chance(r.near_share) {
            let ticks = (-(1.0 - self.rng.unit()).ln() * r.near_mean) as i64;
            1 + ticks.min(r.near_max - 1)
        } else {
            1 + self.rng.below(r.far_max as u64) as i64
        }
    }

    /// A price `offset()` ticks behind the mid, kept off the opposite touch so that it rests.
    fn passive_price(&mut self, side: Side) -> i64 {
        let offset = self.offset();
        let bbo = self.book.bbo();
        match side {
            Side::Buy => (self.mid - offset).min(bbo.ask.map_or(i64::MAX, |(ask, _)| ask - 1)).max(1),
            Side::Sell => (self.mid + offset).max(bbo.bid.map_or(0, |(bid, _)| bid + 1)),
        }
    }

    /// A price at or a little through the opposite touch (or just off the mid when that side is
    /// empty): an order priced here trades at once.
    fn aggressive_price(&mut self, side: Side) -> i64 {
        let through = self.rng.below(3) as i64;
        let bbo = self.book.bbo();
        match side {
            Side::Buy => bbo.ask.map_or(self.mid + 1, |(price, _)| price) + through,
            Side::Sell => (bbo.bid.map_or(self.mid - 1, |(price, _)| price) - through).max(1),
        }
    }

    fn drift(&mut self) {
        if self.rng.chance(self.regime.drift_per_10k) {
            let step = if self.rng.below(2) == 0 { -1 } else { 1 };
            let next = self.mid + step;
            let inside = match self.regime.drift_bound {
                Some(bound) => (next - START_MID).abs() <= bound,
                None => next > 10_000,
            };
            if inside {
                self.mid = next;
            }
        }
    }

    fn new_order(&mut self, aggressive: bool, ioc: bool) -> Command {
        let id = self.next_id;
        self.next_id += 1;
        let account = self.account();
        let side = self.side();
        let qty = if ioc { 1 + self.rng.below(50) as i64 } else { self.qty() };
        let mut order = if ioc && self.rng.chance(2_000) {
            NewOrder::market(id, account, side, qty)
        } else {
            let price = if aggressive { self.aggressive_price(side) } else { self.passive_price(side) };
            let order = NewOrder::limit(id, account, side, price, qty);
            if ioc {
                order.with_tif(TimeInForce::Ioc)
            } else if !aggressive && self.rng.chance(1_000) {
                order.with_post_only()
            } else {
                order
            }
        };
        let stp = self.rng.below(20);
        order.stp = match stp {
            0 => StpMode::CancelNewest,
            1 => StpMode::CancelOldest,
            2 => StpMode::CancelBoth,
            _ => StpMode::None,
        };
        if self.rng.below(2) == 0 {
            // Far above anything the workload reaches: the check runs, it never rejects.
            order.max_position = Some(1_000_000_000);
        }
        Command::New(order)
    }

    fn replace(&mut self) -> Command {
        let (order_id, account) = self.live.pick(&mut self.rng);
        let order = self.book.order(order_id).expect("live orders rest in the scratch book");
        let roll = self.rng.below(100);
        let (price, qty) = if roll < 40 && order.qty > 1 {
            // Same price, smaller: keeps queue priority.
            (None, Some(1 + self.rng.below(order.qty as u64 - 1) as i64))
        } else if roll < 60 {
            (None, Some(order.qty + 1 + self.rng.below(50) as i64))
        } else if roll < 85 {
            // Nudge the price a few ticks either way; towards the touch it may cross.
            let step = 1 + self.rng.below(3) as i64;
            let price = if self.rng.below(2) == 0 { order.price - step } else { order.price + step };
            (Some(price.max(1)), None)
        } else {
            // Re-quote around the current mid (how stale quotes follow a drifting market).
            (Some(self.passive_price(order.side)), Some(self.qty()))
        };
        Command::Replace { order_id, account, price, qty }
    }

    /// One steady-state message.
    fn steady(&mut self) -> Command {
        self.drift();
        let target = self.regime.target_orders;
        let band = target * BAND_PCT / 100;
        let roll = self.rng.below(10_000);
        let mut kind = if roll < NEW_PER_10K {
            CommandKind::New
        } else if roll < NEW_PER_10K + CANCEL_PER_10K {
            CommandKind::Cancel
        } else {
            CommandKind::Replace
        };
        if kind == CommandKind::Cancel && self.live.len() < target - band {
            kind = CommandKind::New;
        } else if kind == CommandKind::New && self.live.len() > target + band {
            kind = CommandKind::Cancel;
        }
        if self.live.len() == 0 {
            kind = CommandKind::New;
        }
        match kind {
            CommandKind::New => {
                let ioc = self.rng.chance(IOC_PER_10K_OF_NEW);
                // Most GTC orders are passive; a few are marketable limits that take and rest.
                let aggressive = ioc || self.rng.chance(400);
                self.new_order(aggressive, ioc)
            }
            CommandKind::Cancel => {
                let (order_id, account) = self.live.pick(&mut self.rng);
                Command::Cancel { order_id, account }
            }
            _ => self.replace(),
        }
    }

    /// Applies `command` to the scratch book and updates the live set from its events.
    fn apply(&mut self, command: &Command) -> (u64, u64, u64) {
        self.out.clear();
        self.book.apply(command, &mut self.out);
        let (mut trades, mut rejects) = (0, 0);
        let mut buf = [0u8; 128];
        for event in &self.out {
            self.digest.update(postcard::to_slice(event, &mut buf).expect("an event encodes in 128 bytes"));
            match event.kind {
                EventKind::Trade { maker_order_id, maker_remaining, .. } => {
                    trades += 1;
                    if maker_remaining == 0 {
                        self.live.remove(maker_order_id);
                    }
                }
                EventKind::Cancelled { order_id, .. } => self.live.remove(order_id),
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
        let (id, account) = match *command {
            Command::New(ref order) => (order.order_id, order.account),
            Command::Replace { order_id, account, .. } => (order_id, account),
            _ => return (self.out.len() as u64, trades, rejects),
        };
        if self.book.order(id).is_some() {
            self.live.add(id, account);
        } else {
            self.live.remove(id);
        }
        (self.out.len() as u64, trades, rejects)
    }

    fn resting(&self) -> (usize, usize) {
        (self.book.order_count(), self.book.level_count())
    }
}

fn generate(regime: Regime, seed: u64, measured_msgs: usize, warmup: usize) -> Workload {
    let mut g = Generator::new(regime, seed);
    let mut setup = Vec::with_capacity(regime.target_orders + warmup);
    // Pre-fill: passive GTC orders around a still mid, none crossing.
    while g.live.len() < regime.target_orders {
        let command = g.new_order(false, false);
        g.apply(&command);
        setup.push(command);
    }
    for _ in 0..warmup {
        let command = g.steady();
        g.apply(&command);
        setup.push(command);
    }
    let resting_start = g.resting();
    g.reject_reasons.clear();
    let mut measured = Vec::with_capacity(measured_msgs);
    let (mut events, mut trades, mut rejects, mut ioc) = (0, 0, 0, 0);
    let mut mix = [0u64; 3];
    for _ in 0..measured_msgs {
        let command = g.steady();
        let (e, t, r) = g.apply(&command);
        events += e;
        trades += t;
        rejects += r;
        match command {
            Command::New(ref order) => {
                mix[0] += 1;
                ioc += (order.tif != TimeInForce::Gtc) as u64;
            }
            Command::Cancel { .. } => mix[1] += 1,
            _ => mix[2] += 1,
        }
        measured.push(command);
    }
    Workload {
        setup,
        measured,
        measured_events: events,
        final_hash: g.book.state_hash(),
        resting_start,
        resting_end: g.resting(),
        mix,
        ioc,
        trades,
        rejects,
        reject_reasons: g.reject_reasons,
        events_digest: g.digest.digest(),
    }
}

// ----- measurement ---------------------------------------------------------------------------------

fn prepared_book(work: &Workload, out: &mut Vec<Event>) -> OrderBook {
    let mut book = OrderBook::new("BENCH");
    for command in &work.setup {
        out.clear();
        book.apply(command, out);
    }
    book
}

/// The measured loop, on its own so a profiler can be pointed at exactly it
/// (`valgrind --tool=callgrind --toggle-collect='*timed_loop*'`).
#[inline(never)]
fn timed_loop(book: &mut OrderBook, commands: &[Command], out: &mut Vec<Event>) -> u64 {
    let mut events = 0u64;
    for command in commands {
        out.clear();
        book.apply(command, out);
        events += out.len() as u64;
    }
    black_box(events)
}

/// One timed pass over the measured messages; returns the elapsed time.
fn throughput_run(work: &Workload, out: &mut Vec<Event>) -> Duration {
    let mut book = prepared_book(work, out);
    let start = Instant::now();
    let events = timed_loop(&mut book, &work.measured, out);
    let elapsed = start.elapsed();
    assert_eq!(events, work.measured_events, "a timed run produced different events");
    assert_eq!(book.state_hash(), work.final_hash, "a timed run ended in a different state");
    elapsed
}

/// What asking for queue positions costs on the book a run ends with: every resting order's
/// (as if each account asked for all of its open orders), in ns per order, and the longest level.
struct QueueProbe {
    ns_per_order: f64,
    orders: usize,
    longest_level: u32,
}

fn queue_probe(work: &Workload, out: &mut Vec<Event>) -> QueueProbe {
    let mut book = prepared_book(work, out);
    // Not through `timed_loop`: a profiler pointed at it must count only the timed runs.
    for command in &work.measured {
        out.clear();
        book.apply(command, out);
    }
    let ids: Vec<u64> = book.resting_orders().iter().map(|o| o.order_id).collect();
    let start = Instant::now();
    let positions = black_box(book.queue_positions(black_box(&ids)));
    let elapsed = start.elapsed();
    let longest_level = positions.iter().flatten().map(|p| p.level_orders).max().unwrap_or(0);
    QueueProbe { ns_per_order: elapsed.as_nanos() as f64 / ids.len().max(1) as f64, orders: ids.len(), longest_level }
}

struct Latency {
    all: Vec<u32>,
    by_kind: [Vec<u32>; 3],
}

/// The latency pass: the clock read around every `apply`.
fn latency_run(work: &Workload, out: &mut Vec<Event>) -> Latency {
    let mut book = prepared_book(work, out);
    let mut all = Vec::with_capacity(work.measured.len());
    let mut by_kind: [Vec<u32>; 3] = Default::default();
    for (kind, v) in by_kind.iter_mut().enumerate() {
        v.reserve(work.mix[kind] as usize);
    }
    for command in &work.measured {
        let t0 = Instant::now();
        out.clear();
        book.apply(command, out);
        let t1 = Instant::now();
        let ns = (t1 - t0).as_nanos().min(u32::MAX as u128) as u32;
        all.push(ns);
        let kind = match command {
            Command::New(_) => 0,
            Command::Cancel { .. } => 1,
            _ => 2,
        };
        by_kind[kind].push(ns);
    }
    assert_eq!(book.state_hash(), work.final_hash, "the latency run ended in a different state");
    all.sort_unstable();
    for v in &mut by_kind {
        v.sort_unstable();
    }
    Latency { all, by_kind }
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The clock itself: what two back-to-back reads cost (p50, p99), as the latency pass does around
/// `apply`, and its resolution (the smallest non-zero difference seen).
struct Clock {
    p50: u32,
    p99: u32,
    resolution: u32,
}

fn clock_overhead() -> Clock {
    let mut samples = Vec::with_capacity(1_000_000);
    for _ in 0..1_000_000 {
        let t0 = Instant::now();
        let t1 = Instant::now();
        samples.push((t1 - t0).as_nanos() as u32);
    }
    samples.sort_unstable();
    let resolution = samples.iter().copied().find(|&ns| ns > 0).unwrap_or(0);
    Clock { p50: pct(&samples, 50.0), p99: pct(&samples, 99.0), resolution }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if !n.is_multiple_of(2) {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct RegimeResult {
    name: &'static str,
    json: String,
    msgs_per_s: f64,
    p99: u32,
    /// Field regimes: the median with the reports handed to a second thread, and its p99.
    handoff: Option<(f64, u32)>,
}

/// A regime of either kind, as `bench_all` runs it.
enum Selected {
    Book(Regime),
    Field(FieldRegime),
}

impl Selected {
    fn name(&self) -> &'static str {
        match self {
            Selected::Book(r) => r.name,
            Selected::Field(r) => r.name,
        }
    }
    fn what(&self) -> &'static str {
        match self {
            Selected::Book(r) => r.what,
            Selected::Field(r) => r.what,
        }
    }
}

/// Generates every selected regime's workload, then times them round-robin (run 1 of each regime,
/// then run 2 of each, ...) so that a burst of noise from a neighbour on this shared machine lands
/// on all regimes alike rather than on whichever one happened to be running; a field regime's run
/// is an in-process pass and a hand-off pass. Then one latency pass per regime (two for a field
/// regime).
fn bench_all(regimes: &[Selected], opts: &Options, clock: &Clock) -> Vec<RegimeResult> {
    let mut works = Vec::new();
    for selected in regimes {
        let started = Instant::now();
        let work = match selected {
            Selected::Book(regime) => {
                let warmup = if opts.quick { regime.warmup / 5 } else { regime.warmup };
                let msgs = opts.msgs.unwrap_or(if opts.quick { 500_000 } else { 5_000_000 });
                (generate(*regime, opts.seed, msgs, warmup), None)
            }
            Selected::Field(regime) => {
                let msgs = opts.msgs.unwrap_or(if opts.quick { 500_000 } else { 2_000_000 });
                let (work, stats) = field::generate(*regime, opts.seed, msgs);
                (work, Some(stats))
            }
        };
        eprintln!("generated {}: {:.1}s", selected.name(), started.elapsed().as_secs_f64());
        works.push(work);
    }
    let mut out = Vec::with_capacity(1024);
    let mut rates = vec![(Vec::with_capacity(opts.runs), Vec::with_capacity(opts.runs)); regimes.len()];
    for _ in 0..opts.runs {
        for ((work, stats), (rates, handoff_rates)) in works.iter().zip(&mut rates) {
            let elapsed = throughput_run(work, &mut out);
            rates.push(work.measured.len() as f64 / elapsed.as_secs_f64());
            if stats.is_some() {
                let elapsed = field::handoff_run(work, &mut out);
                handoff_rates.push(work.measured.len() as f64 / elapsed.as_secs_f64());
            }
        }
    }
    let mut results = Vec::new();
    for ((selected, (work, stats)), (rates, handoff_rates)) in regimes.iter().zip(&works).zip(&rates) {
        let lat = latency_run(work, &mut out);
        let probe = queue_probe(work, &mut out);
        eprintln!(
            "{}: queue positions of all {} resting orders: {:.0} ns per order (longest level {} orders)",
            selected.name(),
            probe.orders,
            probe.ns_per_order,
            probe.longest_level
        );
        let handoff = stats.as_ref().map(|_| (handoff_rates.as_slice(), field::handoff_latency_run(work, &mut out)));
        let mut result = regime_result(selected, work, stats.as_ref(), rates, handoff, &lat, clock);
        result.json.pop();
        result.json.push_str(&format!(
            ", \"queue_position_ns_per_order\": {:.0}, \"longest_level\": {}}}",
            probe.ns_per_order, probe.longest_level
        ));
        results.push(result);
    }
    results
}

fn regime_result(
    selected: &Selected,
    work: &Workload,
    stats: Option<&FieldStats>,
    rates: &[f64],
    handoff: Option<(&[f64], Vec<u32>)>,
    lat: &Latency,
    clock: &Clock,
) -> RegimeResult {
    let n = work.measured.len() as f64;
    let rate = median(rates);
    eprintln_table(selected, work, rates, rate, lat, clock);
    let [new, cancel, replace] = work.mix;
    let q = |p| pct(&lat.all, p);
    let mut json = format!(
        concat!(
            "{{\"msgs_per_s\": {:.0}, \"msgs_per_s_runs\": [{}], \"p50_ns\": {}, \"p90_ns\": {}, \"p99_ns\": {}, ",
            "\"p999_ns\": {}, \"max_ns\": {}, \"ns_per_msg\": {:.1}, \"messages\": {}, \"events_per_msg\": {:.2}, ",
            "\"trades_per_msg\": {:.3}, \"rejects\": {}, \"mix\": {{\"new\": {:.4}, \"ioc_of_new\": {:.4}, ",
            "\"cancel\": {:.4}, \"replace\": {:.4}}}, \"resting_orders\": {}, \"levels\": {}, \"events_digest\": \"{:016x}\""
        ),
        rate,
        rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", "),
        q(50.0),
        q(90.0),
        q(99.0),
        q(99.9),
        lat.all.last().copied().unwrap_or(0),
        1e9 / rate,
        work.measured.len(),
        work.measured_events as f64 / n,
        work.trades as f64 / n,
        work.rejects,
        new as f64 / n,
        work.ioc as f64 / new.max(1) as f64,
        cancel as f64 / n,
        replace as f64 / n,
        work.resting_start.0,
        work.resting_start.1,
        work.events_digest,
    );
    let mut handoff_result = None;
    if let (Some(stats), Some((handoff_rates, handoff_lat))) = (stats, handoff) {
        let handoff_rate = median(handoff_rates);
        let hq = |p| pct(&handoff_lat, p);
        eprintln!(
            "   hand-off to a second thread: runs {}; median {} msgs/s ({:.1} ns/msg); p50 {} p99 {} p99.9 {} ns",
            handoff_rates.iter().map(|r| format!("{:.2}M", r / 1e6)).collect::<Vec<_>>().join("  "),
            thousands(handoff_rate as u64),
            1e9 / handoff_rate,
            hq(50.0),
            hq(99.0),
            hq(99.9)
        );
        eprintln!(
            "   price {} -> low {} high {}; {:.1}% of rested orders cancelled by their owner; {:.2}% of cancels/modifies name a gone order",
            stats.start_price,
            stats.low_price,
            stats.high_price,
            100.0 * stats.cancelled_of_rested,
            100.0 * stats.gone_targets
        );
        json.push_str(&format!(
            concat!(
                ", \"handoff_msgs_per_s\": {:.0}, \"handoff_msgs_per_s_runs\": [{}], \"handoff_p50_ns\": {}, ",
                "\"handoff_p99_ns\": {}, \"handoff_p999_ns\": {}, \"cancelled_of_rested\": {:.4}, ",
                "\"gone_targets\": {:.4}, \"price\": {{\"start\": {}, \"low\": {}, \"high\": {}}}"
            ),
            handoff_rate,
            handoff_rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", "),
            hq(50.0),
            hq(99.0),
            hq(99.9),
            stats.cancelled_of_rested,
            stats.gone_targets,
            stats.start_price,
            stats.low_price,
            stats.high_price,
        ));
        handoff_result = Some((handoff_rate, hq(99.0)));
    }
    json.push('}');
    RegimeResult { name: selected.name(), json, msgs_per_s: rate, p99: q(99.0), handoff: handoff_result }
}

fn eprintln_table(regime: &Selected, work: &Workload, rates: &[f64], rate: f64, lat: &Latency, clock: &Clock) {
    let n = work.measured.len() as f64;
    let [new, cancel, replace] = work.mix;
    eprintln!();
    eprintln!("== {} — {}", regime.name(), regime.what());
    eprintln!(
        "   {} measured messages after {} set-up messages",
        thousands(work.measured.len() as u64),
        thousands(work.setup.len() as u64),
    );
    eprintln!(
        "   mix: new {:.1}% (IOC/market {:.1}% of new), cancel {:.1}%, replace {:.1}%; {:.2} events/msg, {:.3} trades/msg, {} rejects",
        100.0 * new as f64 / n,
        100.0 * work.ioc as f64 / new.max(1) as f64,
        100.0 * cancel as f64 / n,
        100.0 * replace as f64 / n,
        work.measured_events as f64 / n,
        work.trades as f64 / n,
        work.rejects
    );
    if !work.reject_reasons.is_empty() {
        let reasons: Vec<String> = work.reject_reasons.iter().map(|(r, n)| format!("{} {}", r.as_str(), n)).collect();
        eprintln!("   rejects by reason: {}", reasons.join(", "));
    }
    eprintln!("   events digest {:016x} (same seed, same engine semantics: same digest)", work.events_digest);
    eprintln!(
        "   book: {} orders on {} levels at start, {} on {} at end",
        thousands(work.resting_start.0 as u64),
        thousands(work.resting_start.1 as u64),
        thousands(work.resting_end.0 as u64),
        thousands(work.resting_end.1 as u64)
    );
    let runs: Vec<String> = rates.iter().map(|r| format!("{:.2}M", r / 1e6)).collect();
    eprintln!("   throughput runs (msgs/s): {}", runs.join("  "));
    eprintln!(
        "   median {:>12} msgs/s  ({:.1} ns/msg, {:.2}x the 10M target)",
        thousands(rate as u64),
        1e9 / rate,
        rate / TARGET_MSGS_PER_S
    );
    eprintln!(
        "   latency, ns (clock reads included: a bare pair costs p50 {} / p99 {} ns; resolution {} ns):",
        clock.p50, clock.p99, clock.resolution
    );
    eprintln!("   {:<8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9}", "kind", "count", "p50", "p90", "p99", "p99.9", "max");
    let row = |name: &str, v: &[u32]| {
        eprintln!(
            "   {:<8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9}",
            name,
            v.len(),
            pct(v, 50.0),
            pct(v, 90.0),
            pct(v, 99.0),
            pct(v, 99.9),
            v.last().copied().unwrap_or(0)
        )
    };
    row("all", &lat.all);
    row("new", &lat.by_kind[0]);
    row("cancel", &lat.by_kind[1]);
    row("replace", &lat.by_kind[2]);
}

// ----- options and main ------------------------------------------------------------------------------

struct Options {
    quick: bool,
    runs: usize,
    /// Measured messages per regime; by default 5M for the book shapes, 2M for the field's.
    msgs: Option<usize>,
    seed: u64,
    regimes: Vec<String>,
    write: bool,
}

fn options() -> Options {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut quick = env("BENCH_QUICK").is_some_and(|v| v != "0");
    let mut runs = env("BENCH_RUNS").map(|v| v.parse().expect("BENCH_RUNS"));
    let mut msgs = env("BENCH_MSGS").map(|v| v.parse().expect("BENCH_MSGS"));
    let mut seed = env("BENCH_SEED").map_or(0x5EED_F1A5_4B00_C0DE, |v| v.parse().expect("BENCH_SEED"));
    let mut regimes: Vec<String> =
        env("BENCH_REGIMES").map(|v| v.split(',').map(str::to_owned).collect()).unwrap_or_default();
    let mut write = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => quick = true,
            "--runs" => runs = Some(value("--runs").parse().expect("--runs N")),
            "--msgs" => msgs = Some(value("--msgs").parse().expect("--msgs N")),
            "--seed" => seed = value("--seed").parse().expect("--seed N"),
            "--regime" => regimes.push(value("--regime")),
            "--no-write" => write = false,
            "-h" | "--help" => {
                eprintln!("usage: bench_engine [--quick] [--runs N] [--msgs N] [--regime mixed|deep|wide|static|drift|swing25|swing40|crash]... [--seed N] [--no-write]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }
    for name in &regimes {
        assert!(
            REGIMES.iter().any(|r| r.name == name) || FIELD_REGIMES.iter().any(|r| r.name == name),
            "unknown regime {name:?}"
        );
    }
    Options {
        quick,
        runs: runs.unwrap_or(if quick { 3 } else { 5 }).max(1),
        msgs: msgs.map(|n: usize| n.max(1)),
        seed,
        regimes,
        write,
    }
}

fn main() {
    let opts = options();
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }
    let clock = clock_overhead();
    eprintln!(
        "bench_engine: {} runs x {} messages per regime, seed {:#x}{}; clock pair p50 {} ns, p99 {} ns, resolution {} ns",
        opts.runs,
        opts.msgs.map_or_else(|| "the default number of".to_owned(), |n| thousands(n as u64)),
        opts.seed,
        if opts.quick { " (quick)" } else { "" },
        clock.p50,
        clock.p99,
        clock.resolution
    );
    let wanted = |name: &str| opts.regimes.is_empty() || opts.regimes.iter().any(|r| r == name);
    let selected: Vec<Selected> = REGIMES
        .into_iter()
        .filter(|regime| wanted(regime.name))
        .map(Selected::Book)
        .chain(FIELD_REGIMES.into_iter().filter(|regime| wanted(regime.name)).map(Selected::Field))
        .collect();
    let results = bench_all(&selected, &opts, &clock);
    // The 10M target is the book-shape regimes'; the field's are reported on their own.
    let (book, field): (Vec<&RegimeResult>, Vec<&RegimeResult>) = results.iter().partition(|r| r.handoff.is_none());
    let worst_of = |rs: &[&RegimeResult], rate: &dyn Fn(&RegimeResult) -> f64| {
        rs.iter().map(|r| (r.name, rate(r))).min_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or(("", 0.0))
    };
    let worst = worst_of(&book, &|r| r.msgs_per_s).1;
    let worst_p99 = book.iter().map(|r| r.p99).max().unwrap_or(0);
    let field_worst = worst_of(&field, &|r| r.msgs_per_s);
    let field_handoff_worst = worst_of(&field, &|r| r.handoff.map_or(0.0, |h| h.0));
    let field_p99 = field.iter().map(|r| r.p99).max().unwrap_or(0);
    let field_handoff_p99 = field.iter().filter_map(|r| r.handoff.map(|h| h.1)).max().unwrap_or(0);
    let regimes = results.iter().map(|r| format!("\"{}\": {}", r.name, r.json)).collect::<Vec<_>>().join(", ");
    let json = format!(
        concat!(
            "{{\"bench\": \"engine\", \"regimes\": {{{}}}, \"worst_msgs_per_s\": {:.0}, \"p99_ns\": {}, ",
            "\"field\": {{\"worst_regime\": \"{}\", \"worst_msgs_per_s\": {:.0}, \"p99_ns\": {}, ",
            "\"worst_handoff_regime\": \"{}\", \"worst_handoff_msgs_per_s\": {:.0}, \"handoff_p99_ns\": {}}}, ",
            "\"target_msgs_per_s\": {:.0}, \"ratio\": {:.3}, \"clock_overhead_ns\": {{\"p50\": {}, \"p99\": {}, \"resolution\": {}}}, ",
            "\"runs\": {}, \"quick\": {}, \"seed\": {}}}"
        ),
        regimes,
        worst,
        worst_p99,
        field_worst.0,
        field_worst.1,
        field_p99,
        field_handoff_worst.0,
        field_handoff_worst.1,
        field_handoff_p99,
        TARGET_MSGS_PER_S,
        worst / TARGET_MSGS_PER_S,
        clock.p50,
        clock.p99,
        clock.resolution,
        opts.runs,
        opts.quick,
        opts.seed
    );
    eprintln!();
    if !field.is_empty() {
        eprintln!(
            "field regimes: worst in process {} ({} msgs/s, p99 {} ns); worst with the hand-off {} ({} msgs/s, p99 {} ns)",
            field_worst.0,
            thousands(field_worst.1 as u64),
            field_p99,
            field_handoff_worst.0,
            thousands(field_handoff_worst.1 as u64),
            field_handoff_p99
        );
    }
    eprintln!(
        "worst regime {} msgs/s = {:.2}x the {} msgs/s target; worst p99 {} ns",
        thousands(worst as u64),
        worst / TARGET_MSGS_PER_S,
        thousands(TARGET_MSGS_PER_S as u64),
        worst_p99
    );
    if opts.write {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("bench").join("results");
        std::fs::create_dir_all(&dir).expect("create bench/results");
        let path = dir.canonicalize().expect("bench/results").join("engine.json");
        std::fs::write(&path, format!("{json}\n")).expect("write bench/results/engine.json");
        eprintln!("wrote {}", path.display());
    }
    println!("{json}");
}
