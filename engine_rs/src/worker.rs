//! The engine worker: matches commands read from each symbol's Redis journal and writes events,
//! market data, the L2 book and snapshots back, recovering exactly after a crash.
//!
//! Per symbol, one task owns the book. A loop reads a batch from the journal (blocking when idle),
//! applies it, and writes everything the batch produced in one pipelined round trip: one event
//! stream entry holding all the batch's event lines, one market-data message, the replies that
//! were asked for, and — when due — the book key, the status key and a snapshot. Matching never
//! waits for Redis per order.
//!
//! Recovery is "snapshot + replay + suppress": load the snapshot (book state and the journal id it
//! covers), replay the journal after it through the same deterministic book, and write only the
//! events whose sequence number is above the last one already in the event stream. Because the
//! book is a pure function of the journal, the replayed events are exactly the ones lost, and the
//! result is as if the worker had never stopped. Any Redis error takes the same path: the session
//! is dropped and the worker recovers from Redis, never from half-written memory.

use crate::book::OrderBook;
use crate::codec::encode_events;
use crate::connect::{key_slot, Connection, Redis};
// Re-exported: `engine_rs::worker::WorkerError` stays the name callers of `run_blocking` know.
pub use crate::error::WorkerError;
use crate::feed::{book_json, market_data_message, queue_text, registry_keys, shard_of, valid_symbol, Keys};
use crate::journal::apply_entry;
use crate::journal_reader::{parse_xread, Batch, JournalReader};
use crate::types::{Event, Seq};
use redis::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub redis_url: String,
    pub prefix: String,
    pub symbols: Vec<String>,
    /// Journal entries read per round trip.
    pub batch_size: usize,
    /// How long one idle read blocks; also the worst-case delay before a stop is noticed.
    pub block_ms: u64,
    /// Snapshot after this many commands...
    pub snapshot_every: u64,
    /// ...or after this long with any command applied.
    pub snapshot_interval: Duration,
    /// Minimum spacing of book-key writes while busy (written at once when idle).
    pub book_interval: Duration,
    pub book_levels: usize,
    /// Expiry of reply lists, so replies nobody waits for anymore disappear.
    pub reply_ttl_ms: u64,
    /// Exit once a read finds the journal drained (benchmarks and tests).
    pub exit_when_drained: bool,
    /// Besides `symbols`, serve the enabled symbols of a shard as they are enabled.
    pub discovery: Option<Discovery>,
}

/// How a worker finds symbols to serve while it runs: it watches the registry of enabled symbols
/// (`feed::registry_keys`: a set, and a counter bumped when the set changes) every `interval`,
/// and serves each symbol `feed::shard_of` gives to its `shard` (0-based) of `shards` — so an
/// instrument enabled in the admin trades within a second, on exactly one shard, with no restart
/// and no list to edit. A symbol that leaves the set keeps its task: its journal still takes the
/// commands that close it (HALT, RESET) and any cancel.
#[derive(Clone, Debug)]
pub struct Discovery {
    pub shard: u32,
    pub shards: u32,
    pub interval: Duration,
}

impl WorkerConfig {
    pub fn new(redis_url: &str, prefix: &str, symbols: Vec<String>) -> Self {
        WorkerConfig {
            redis_url: redis_url.to_owned(),
            prefix: prefix.to_owned(),
            symbols,
            batch_size: 2_000,
            block_ms: 200,
            snapshot_every: 100_000,
            snapshot_interval: Duration::from_secs(30),
            book_interval: Duration::from_millis(50),
            book_levels: 20,
            reply_ttl_ms: 30_000,
            exit_when_drained: false,
            discovery: None,
        }
    }
}

/// What one symbol's task did, returned when the worker stops.
#[derive(Clone, Debug, Default)]
pub struct SymbolReport {
    pub symbol: String,
    pub commands: u64,
    pub events_written: u64,
    pub seq: Seq,
    pub last_journal_id: String,
    pub state_hash: u64,
    pub recoveries: u32,
}

/// Runs the worker until SIGINT/SIGTERM (or until drained, if configured). Blocks the calling
/// thread; the Python binding calls it with the GIL released. Reports come in the order the
/// symbols were taken on: `symbols` first, then as discovered.
pub fn run_blocking(config: WorkerConfig) -> Result<Vec<SymbolReport>, WorkerError> {
    crate::logging::install();
    if config.symbols.is_empty() && config.discovery.is_none() {
        return Err(WorkerError::Config("no symbols to serve".into()));
    }
    if let Some(bad) = config.symbols.iter().find(|s| !valid_symbol(s)) {
        return Err(WorkerError::Config(format!("invalid symbol {bad:?} (A-Z, 0-9, '.', '_', '-'; 1-32 chars)")));
    }
    if config.batch_size == 0 {
        return Err(WorkerError::Config("batch_size must be positive".into()));
    }
    if let Some(discovery) = &config.discovery {
        if discovery.shard >= discovery.shards {
            return Err(WorkerError::Config(format!(
                "shard {} of {}: a shard is numbered from 1 to the number of shards",
                discovery.shard + 1,
                discovery.shards
            )));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut stopping = stop_rx.clone();
        tokio::spawn(async move {
            wait_for_stop_signal().await;
            let _ = stop_tx.send(true);
        });
        let redis = Redis::open(&config.redis_url)?;
        let config = Arc::new(config);
        let mut tasks = JoinSet::new();
        let mut order: Vec<String> = Vec::new();
        let mut reports: HashMap<String, SymbolReport> = HashMap::new();
        let mut serve = |symbol: String, tasks: &mut JoinSet<_>| {
            if !order.contains(&symbol) {
                order.push(symbol.clone());
                tasks.spawn(serve_symbol(redis.clone(), config.clone(), symbol, stop_rx.clone()));
            }
        };
        for symbol in &config.symbols {
            serve(symbol.clone(), &mut tasks);
        }
        if let Some(discovery) = config.discovery.clone() {
            let mut registry = Registry::new(redis.clone(), &config.prefix, &discovery);
            loop {
                match registry.enabled_of_shard().await {
                    Ok(symbols) => {
                        for symbol in symbols {
                            info!(symbol, shard = discovery.shard + 1, shards = discovery.shards, "serving");
                            serve(symbol, &mut tasks);
                        }
                    }
                    Err(error) => warn!(error = %error, "could not read the enabled symbols; retrying"),
                }
                if config.exit_when_drained {
                    break; // one look: the symbols enabled now, until their journals are drained
                }
                tokio::select! {
                    changed = stopping.changed() => if changed.is_err() || *stopping.borrow() { break },
                    _ = tokio::time::sleep(discovery.interval) => {}
                    Some(joined) = tasks.join_next() => {
                        // A symbol's task ends early only on an error (a bad configuration).
                        let report = joined.map_err(|e| WorkerError::Protocol(format!("symbol task failed: {e}")))??;
                        reports.insert(report.symbol.clone(), report);
                    }
                }
            }
        }
        while let Some(joined) = tasks.join_next().await {
            let report = joined.map_err(|e| WorkerError::Protocol(format!("symbol task failed: {e}")))??;
            reports.insert(report.symbol.clone(), report);
        }
        Ok(order.iter().filter_map(|symbol| reports.remove(symbol)).collect())
    })
}

/// The registry of enabled symbols, as one shard sees it (`Discovery`).
struct Registry {
    redis: Redis,
    connection: Option<Connection>,
    set_key: String,
    version_key: String,
    /// The counter's value at the last look (`None` inside: no counter yet), or never looked.
    seen: Option<Option<i64>>,
    shard: u32,
    shards: u32,
}

impl Registry {
    fn new(redis: Redis, prefix: &str, discovery: &Discovery) -> Self {
        let (set_key, version_key) = registry_keys(prefix);
        Registry {
            redis,
            connection: None,
            set_key,
            version_key,
            seen: None,
            shard: discovery.shard,
            shards: discovery.shards,
        }
    }

    /// The enabled symbols this shard owns, when the set has changed since the last look (else
    /// none): one GET per look while nothing changes.
    async fn enabled_of_shard(&mut self) -> Result<Vec<String>, WorkerError> {
        let result = self.look().await;
        if result.is_err() {
            self.connection = None; // reconnect at the next look
        }
        result
    }

    async fn look(&mut self) -> Result<Vec<String>, WorkerError> {
        if self.connection.is_none() {
            self.connection = Some(self.redis.connect().await?);
        }
        let Some(connection) = self.connection.as_mut() else {
            return Ok(Vec::new());
        };
        let version: Option<i64> = redis::cmd("GET").arg(&self.version_key).query_async(connection).await?;
        if self.seen == Some(version) {
            return Ok(Vec::new());
        }
        let members: Vec<String> = redis::cmd("SMEMBERS").arg(&self.set_key).query_async(connection).await?;
        self.seen = Some(version);
        let mut mine: Vec<String> = members
            .into_iter()
            .filter(|symbol| {
                let valid = valid_symbol(symbol);
                if !valid {
                    warn!(symbol = symbol.as_str(), "ignoring an invalid symbol in the registry");
                }
                valid && shard_of(symbol, self.shards) == self.shard
            })
            .collect();
        mine.sort();
        Ok(mine)
    }
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        error!("could not install signal handlers; stop the worker with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

/// Serves one symbol until stopped, recovering from Redis after any Redis error.
async fn serve_symbol(
    redis: Redis,
    config: Arc<WorkerConfig>,
    symbol: String,
    stop: watch::Receiver<bool>,
) -> Result<SymbolReport, WorkerError> {
    let mut recoveries = 0;
    let mut backoff = Duration::from_millis(100);
    loop {
        match Session::start(&redis, &config, &symbol).await {
            Ok(mut session) => {
                session.report.recoveries = recoveries;
                match session.run(&stop).await {
                    Ok(()) => return Ok(session.report),
                    Err(error) => {
                        error!(symbol, error = %error, "session failed; recovering from redis")
                    }
                }
            }
            Err(WorkerError::Config(message)) => return Err(WorkerError::Config(message)),
            Err(error) => error!(symbol, error = %error, "could not start; retrying"),
        }
        if *stop.borrow() {
            return Err(WorkerError::Protocol(format!("{symbol}: stopped while redis was failing")));
        }
        recoveries += 1;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

struct Session<'a> {
    config: &'a WorkerConfig,
    keys: Keys,
    reader: JournalReader,
    writer: Connection,
    /// On a cluster, the slot of the symbol's keys: a reply key elsewhere is not written (see
    /// [`Session::apply_batch`]). None on one server.
    slot: Option<u16>,
    book: OrderBook,
    last_id: String,
    /// Events with a sequence number up to this are already in the event stream: not re-sent.
    written_seq: Seq,
    commands_since_snapshot: u64,
    last_snapshot: Instant,
    last_book_write: Option<Instant>,
    book_dirty: bool,
    /// Whether the status key may hold a `state_hash` (it must never outlive the state it hashes).
    status_hashed: bool,
    /// When an idle, paused book may append its next clock tick (see [`Session::queue_clock_tick`]).
    next_clock_tick: Instant,
    report: SymbolReport,
}

impl<'a> Session<'a> {
    async fn start(redis: &Redis, config: &'a WorkerConfig, symbol: &str) -> Result<Session<'a>, WorkerError> {
        let keys = Keys::new(&config.prefix, symbol);
        let mut writer = redis.connect_patient().await?;
        // On a cluster, the primary of the symbol's slot as the cluster sees it now; a new session
        // (after a failover, say) asks again.
        let reader = JournalReader::connect(&redis.node_of(&mut writer, &keys.journal).await?).await?;
        let slot = redis.is_cluster().then(|| key_slot(keys.journal.as_bytes()));
        let (book, last_id) = load_snapshot(&mut writer, &keys, symbol).await?;
        let written_seq = last_written_seq(&mut writer, &keys).await?;
        info!(symbol, snapshot_seq = book.seq(), journal_from = last_id.as_str(), written_seq, "recovered");
        Ok(Session {
            config,
            keys,
            reader,
            writer,
            slot,
            report: SymbolReport {
                symbol: symbol.to_owned(),
                seq: book.seq(),
                last_journal_id: last_id.clone(),
                ..Default::default()
            },
            book,
            last_id,
            written_seq,
            commands_since_snapshot: 0,
            last_snapshot: Instant::now(),
            last_book_write: None,
            book_dirty: true,
            // A previous process may have left one.
            status_hashed: true,
            next_clock_tick: Instant::now(),
        })
    }

    async fn run(&mut self, stop: &watch::Receiver<bool>) -> Result<(), WorkerError> {
        let mut events: Vec<Event> = Vec::with_capacity(self.config.batch_size * 4);
        let mut event_text = String::new();
        let mut replies: Vec<(Vec<u8>, String)> = Vec::new();
        let mut requested = false;
        loop {
            if *stop.borrow() {
                break;
            }
            let (count, block_ms) = (self.config.batch_size, self.config.block_ms);
            if !requested {
                self.reader.request_batch(&self.keys.journal, &self.last_id, count, block_ms).await?;
            }
            let reply = self.reader.reply().await?;
            let batch = parse_xread(&reply)?;
            let drained = batch.len() < count;
            // A full batch means more is probably waiting: ask for it now, so that Redis prepares
            // the next batch while this one is matched and written.
            requested = false;
            if let (false, Some(last)) = (drained, batch.last_id()) {
                self.reader.request_batch(&self.keys.journal, last, count, block_ms).await?;
                requested = true;
            }
            let mut pipe = redis::pipe();
            replies.clear();
            if !batch.is_empty() {
                events.clear();
                event_text.clear();
                self.apply_batch(&batch, &mut events, &mut event_text, &mut replies, &mut pipe);
            }
            drop(batch);
            self.reader.recycle(reply);
            let now = Instant::now();
            let book_due = (self.book_dirty
                && (drained || self.last_book_write.is_none_or(|at| now.duration_since(at) >= self.config.book_interval)))
                // Idle: the status gets its state hash even if the last busy write left it without.
                || (drained && !self.status_hashed);
            if book_due {
                self.queue_book_and_status(&mut pipe, drained);
            }
            if drained {
                self.queue_clock_tick(&mut pipe, now);
            }
            let snapshot_due = self.commands_since_snapshot >= self.config.snapshot_every
                || (self.commands_since_snapshot > 0
                    && now.duration_since(self.last_snapshot) >= self.config.snapshot_interval);
            if snapshot_due {
                self.queue_snapshot(&mut pipe);
            }
            if !pipe.is_empty() {
                self.write(pipe, &replies).await?;
            }
            if drained && self.config.exit_when_drained {
                break;
            }
        }
        let mut pipe = redis::pipe();
        self.queue_book_and_status(&mut pipe, true);
        self.queue_snapshot(&mut pipe);
        self.write(pipe, &[]).await?;
        self.report.seq = self.book.seq();
        self.report.last_journal_id = self.last_id.clone();
        self.report.state_hash = self.book.state_hash();
        info!(
            symbol = self.book.symbol(),
            seq = self.book.seq(),
            journal_id = self.last_id.as_str(),
            commands = self.report.commands,
            "stopped"
        );
        Ok(())
    }

    fn apply_batch(
        &mut self,
        batch: &Batch<'_>,
        events: &mut Vec<Event>,
        event_text: &mut String,
        replies: &mut Vec<(Vec<u8>, String)>,
        pipe: &mut redis::Pipeline,
    ) {
        let mut malformed = String::new();
        let mut last_visible_id = None;
        for (id, fields) in batch.iter() {
            let start = events.len();
            let outcome = apply_entry(&mut self.book, Some(id), fields, events);
            let produced = &events[start..];
            // A command's events are all above or all at/below the high-water mark: the stream
            // was written a whole batch of whole commands at a time.
            let visible = produced.first().is_some_and(|e| e.seq > self.written_seq);
            if let Some(detail) = &outcome.malformed {
                let seq = produced.first().map_or(0, |e| e.seq);
                if visible {
                    warn!(symbol = self.book.symbol(), id, seq, detail = detail.as_str(), "malformed journal entry");
                    use std::fmt::Write as _;
                    let _ = writeln!(malformed, "{seq} {detail}");
                }
            }
            if visible {
                last_visible_id = Some(id);
                if let Some(reply_to) = outcome.reply_to.filter(|key| self.may_reply_to(key)) {
                    let mut text = String::new();
                    encode_events(produced, &mut text);
                    replies.push((reply_to, text));
                }
            }
        }
        let last = batch.last_id().expect("a batch has entries");
        self.last_id.clear();
        self.last_id.push_str(last);
        self.report.commands += batch.len() as u64;
        self.commands_since_snapshot += batch.len() as u64;
        self.book_dirty = true;

        let first_visible = events.iter().position(|e| e.seq > self.written_seq);
        if let (Some(index), Some(journal_id)) = (first_visible, last_visible_id) {
            let visible = &events[index..];
            let (from, to) = (visible[0].seq, visible[visible.len() - 1].seq);
            encode_events(visible, event_text);
            let xadd = pipe.cmd("XADD").arg(&self.keys.events).arg("*");
            xadd.arg("first")
                .arg(from)
                .arg("last")
                .arg(to)
                .arg("jid")
                .arg(journal_id)
                .arg("e")
                .arg(event_text.as_str());
            if !malformed.is_empty() {
                xadd.arg("malformed").arg(malformed.as_str());
            }
            let message = market_data_message(&self.book, from, to, visible);
            pipe.cmd("PUBLISH").arg(&self.keys.market_data).arg(message);
            self.report.events_written += visible.len() as u64;
            self.written_seq = to;
        }
    }

    /// Whether a command's reply key may be written. On a cluster a batch's writes go to the
    /// symbol's slot in one pipeline, and a reply key hashing elsewhere would be refused with
    /// `MOVED` there — the session would fail, recover, replay the same entry and fail again. So
    /// a reply key must carry the symbol's hash tag (as the gateway's do, `docs/protocol.md`), and
    /// one that does not is logged and dropped: the command still has its outcome in the event
    /// stream.
    fn may_reply_to(&self, key: &[u8]) -> bool {
        let Some(slot) = self.slot else { return true };
        let same = key_slot(key) == slot;
        if !same {
            warn!(
                symbol = self.book.symbol(),
                key = %String::from_utf8_lossy(key),
                "not replying to a key outside the symbol's cluster slot"
            );
        }
        same
    }

    /// Ends a volatility pause on a journal that has gone quiet: once the pause is over by this
    /// machine's clock, appends a CLOCK entry, whose stream id carries Redis's time. Reading it
    /// back moves the book's clock (which ends the pause if Redis agrees the time has come; if its
    /// clock lags, another tick follows a second later). Through the journal rather than by the
    /// worker's own clock, so that a replay ends the pause at the same place in the sequence: an
    /// entry appended after the tick cannot carry an earlier time.
    fn queue_clock_tick(&mut self, pipe: &mut redis::Pipeline, now: Instant) {
        let (_, _, _, paused_until) = self.book.volatility();
        if paused_until == 0 || now < self.next_clock_tick {
            return;
        }
        let wall_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        if wall_ms < paused_until {
            return;
        }
        pipe.cmd("XADD").arg(&self.keys.journal).arg("*").arg("t").arg("clock");
        self.next_clock_tick = now + Duration::from_secs(1);
    }

    /// Sends a batch's writes in one round trip, the replies last (after the events they
    /// announce). A reply Redis refuses (the producer named a key holding another type) is logged
    /// and dropped: a producer's mistake must not cost a recovery. Any other refusal means Redis may
    /// not hold what this session assumes, so the session fails and recovers from Redis.
    async fn write(&mut self, mut pipe: redis::Pipeline, replies: &[(Vec<u8>, String)]) -> Result<(), WorkerError> {
        let essential = pipe.len();
        // One LPUSH per reply key with all of its replies, in order: a process's listener pops
        // them in one go, and Redis runs two commands per key rather than two per reply.
        let mut by_key: Vec<(&[u8], Vec<&str>)> = Vec::new();
        let mut index_of: HashMap<&[u8], usize> = HashMap::new();
        for (key, text) in replies {
            let index = *index_of.entry(key.as_slice()).or_insert_with(|| {
                by_key.push((key.as_slice(), Vec::new()));
                by_key.len() - 1
            });
            by_key[index].1.push(text.as_str());
        }
        for (key, texts) in &by_key {
            pipe.cmd("LPUSH").arg(*key).arg(texts.as_slice());
            pipe.cmd("PEXPIRE").arg(*key).arg(self.config.reply_ttl_ms);
        }
        // Nothing in the pipeline is `ignore()`d: with `ignore_errors` every result comes back, in
        // order, so each error can be told apart.
        let results: Vec<Value> = pipe.ignore_errors().query_async(&mut self.writer).await?;
        for (index, result) in results.iter().enumerate() {
            let Value::ServerError(error) = result else {
                continue;
            };
            if index < essential {
                return Err(WorkerError::Protocol(format!("redis refused a write: {error}")));
            }
            let key = String::from_utf8_lossy(by_key[(index - essential) / 2].0);
            warn!(symbol = self.book.symbol(), key = %key, error = %error, "could not push a reply");
        }
        Ok(())
    }

    fn queue_book_and_status(&mut self, pipe: &mut redis::Pipeline, with_hash: bool) {
        let ts_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        pipe.cmd("SET").arg(&self.keys.book).arg(book_json(&self.book, self.config.book_levels, ts_ms));
        // The queues of the same levels, for the owners' queue positions (`docs/protocol.md`).
        pipe.cmd("SET").arg(&self.keys.queue).arg(queue_text(&self.book, self.config.book_levels));
        if !with_hash && self.status_hashed {
            // The hash of an older state must not sit next to this state's `jid` and `seq`.
            pipe.cmd("HDEL").arg(&self.keys.status).arg("state_hash");
        }
        let status = pipe.cmd("HSET").arg(&self.keys.status);
        status
            .arg("seq")
            .arg(self.book.seq())
            .arg("jid")
            .arg(&self.last_id)
            .arg("commands")
            .arg(self.report.commands)
            .arg("orders")
            .arg(self.book.order_count())
            .arg("halted")
            .arg(self.book.is_halted() as u8)
            .arg("ts_ms")
            .arg(ts_ms.to_string())
            .arg("pid")
            .arg(std::process::id());
        if with_hash {
            // O(resting orders): only when idle or stopping, never on the busy path.
            status.arg("state_hash").arg(self.book.state_hash().to_string());
        }
        self.status_hashed = with_hash;
        self.last_book_write = Some(Instant::now());
        self.book_dirty = false;
    }

    fn queue_snapshot(&mut self, pipe: &mut redis::Pipeline) {
        pipe.cmd("HSET")
            .arg(&self.keys.snapshot)
            .arg("data")
            .arg(self.book.snapshot())
            .arg("jid")
            .arg(&self.last_id)
            .arg("seq")
            .arg(self.book.seq());
        self.commands_since_snapshot = 0;
        self.last_snapshot = Instant::now();
    }
}

/// The book and the journal id to read after: from the snapshot if there is a usable one,
/// otherwise an empty book and the start of the journal.
async fn load_snapshot(conn: &mut Connection, keys: &Keys, symbol: &str) -> Result<(OrderBook, String), WorkerError> {
    let (data, jid): (Option<Vec<u8>>, Option<String>) =
        redis::cmd("HMGET").arg(&keys.snapshot).arg("data").arg("jid").query_async(conn).await?;
    let fresh = || (OrderBook::new(symbol), "0-0".to_owned());
    let (Some(data), Some(jid)) = (data, jid) else {
        return Ok(fresh());
    };
    match OrderBook::restore(&data) {
        Ok(book) if book.symbol() == symbol => Ok((book, jid)),
        Ok(book) => {
            error!(symbol, found = book.symbol(), "snapshot is of another symbol; replaying the whole journal");
            Ok(fresh())
        }
        Err(error) => {
            error!(symbol, error = %error, "snapshot unusable; replaying the whole journal");
            Ok(fresh())
        }
    }
}

/// The last sequence number already in the event stream (0 if none).
async fn last_written_seq(conn: &mut Connection, keys: &Keys) -> Result<Seq, WorkerError> {
    let reply: Value =
        redis::cmd("XREVRANGE").arg(&keys.events).arg("+").arg("-").arg("COUNT").arg(1).query_async(conn).await?;
    let Value::Array(entries) = reply else {
        return Err(WorkerError::Protocol("XREVRANGE did not return an array".into()));
    };
    let Some(entry) = entries.into_iter().next() else {
        return Ok(0);
    };
    let entry = parse_entry(entry)?;
    entry
        .fields
        .iter()
        .find(|(key, _)| key == b"last")
        .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok())
        .ok_or_else(|| WorkerError::Protocol(format!("event stream entry {} has no valid `last` field", entry.id)))
}

/// A stream entry read through redis-rs (the event stream's last entry, at start).
struct StreamEntry {
    id: String,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

fn parse_entry(item: Value) -> Result<StreamEntry, WorkerError> {
    let Value::Array(mut parts) = item else {
        return Err(WorkerError::Protocol("stream entry is not an array".into()));
    };
    if parts.len() != 2 {
        return Err(WorkerError::Protocol("stream entry is not [id, fields]".into()));
    }
    let raw_fields = parts.pop().expect("len 2");
    let id = match parts.pop().expect("len 2") {
        Value::BulkString(bytes) => {
            String::from_utf8(bytes).map_err(|_| WorkerError::Protocol("entry id not UTF-8".into()))?
        }
        Value::SimpleString(text) => text,
        other => return Err(WorkerError::Protocol(format!("entry id is {other:?}"))),
    };
    let flat = match raw_fields {
        Value::Array(values) => values,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Nil => Vec::new(),
        other => return Err(WorkerError::Protocol(format!("entry fields are {other:?}"))),
    };
    let mut fields = Vec::with_capacity(flat.len() / 2);
    let mut values = flat.into_iter().map(|value| match value {
        Value::BulkString(bytes) => bytes,
        Value::SimpleString(text) => text.into_bytes(),
        Value::Int(number) => number.to_string().into_bytes(),
        _ => Vec::new(),
    });
    while let (Some(key), Some(value)) = (values.next(), values.next()) {
        fields.push((key, value));
    }
    Ok(StreamEntry { id, fields })
}
