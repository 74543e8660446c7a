//! Redis key names and the text forms the worker publishes besides the event lines: market-data
//! messages, the L2 book snapshot and the queues of its best levels (see `docs/protocol.md`).

use crate::book::OrderBook;
use crate::codec::encode_event;
use crate::types::{Event, EventKind, Seq, Side};
use std::fmt::Write as _;

/// Key names of one symbol. `{SYM}` is a Redis Cluster hash tag: all of a symbol's keys hash to
/// one slot, so one worker's pipelines and a symbol's scripts never cross slots.
#[derive(Clone, Debug)]
pub struct Keys {
    pub journal: String,
    pub events: String,
    pub market_data: String,
    pub book: String,
    /// The queues of the book's best levels (`queue_text`): readers' queue positions.
    pub queue: String,
    pub snapshot: String,
    pub status: String,
}

impl Keys {
    pub fn new(prefix: &str, symbol: &str) -> Self {
        let key = |kind: &str| format!("{prefix}:{kind}:{{{symbol}}}");
        Keys {
            journal: key("cmd"),
            events: key("evt"),
            market_data: key("md"),
            book: key("book"),
            queue: key("queue"),
            snapshot: key("snap"),
            status: key("status"),
        }
    }
}

/// The set of enabled symbols (written by the exchange app from its database) and a counter bumped
/// whenever the set changes: what an engine that discovers its symbols watches.
pub fn registry_keys(prefix: &str) -> (String, String) {
    (format!("{prefix}:instruments"), format!("{prefix}:instruments:version"))
}

const KEY_SLOT: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// Which of `shards` engine shards (0-based) owns a symbol: its keys' Redis Cluster slot (the
/// CRC-16 of the hash tag, the symbol, modulo 16384) modulo `shards`. A rule rather than a list,
/// so that a symbol enabled later has an owner without anyone being told; the slot, so that with
/// as many shards as cluster primaries a shard's symbols can live on one primary.
pub fn shard_of(symbol: &str, shards: u32) -> u32 {
    let slot = u32::from(KEY_SLOT.checksum(symbol.as_bytes()) % 16_384);
    slot % shards.max(1)
}

/// Symbols are used inside key names and JSON unescaped, so they are kept to a safe alphabet.
pub fn valid_symbol(symbol: &str) -> bool {
    (1..=32).contains(&symbol.len())
        && symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Whether live market-data subscribers care about this event: book levels, trades and status.
pub fn is_market_data(event: &Event) -> bool {
    matches!(event.kind, EventKind::Level { .. } | EventKind::Trade { .. } | EventKind::Status { .. })
}

/// One market-data message covering the events `from..=to`: a header line `M from to`, the
/// market-data event lines among them, and a closing BBO line
/// `B seq bid_price bid_qty ask_price ask_qty` (0 0 for an empty side). A subscriber that sees
/// `from` differ from its last `to` + 1 has missed a message and resyncs from the book key.
pub fn market_data_message(book: &OrderBook, from: Seq, to: Seq, events: &[Event]) -> String {
    let mut text = String::with_capacity(64 + events.len() * 24);
    let _ = writeln!(text, "M {from} {to}");
    for event in events.iter().filter(|e| is_market_data(e)) {
        encode_event(event, &mut text);
    }
    let bbo = book.bbo();
    let (bid_price, bid_qty) = bbo.bid.unwrap_or((0, 0));
    let (ask_price, ask_qty) = bbo.ask.unwrap_or((0, 0));
    let _ = writeln!(text, "B {to} {bid_price} {bid_qty} {ask_price} {ask_qty}");
    text
}

/// The L2 snapshot stored at the book key, as JSON:
/// `{"symbol":..,"seq":..,"halted":..,"ts_ms":..,"band":[low,high] or null,"paused_until":ms or null,
/// "bids":[[price,qty],..],"asks":[..]}`.
pub fn book_json(book: &OrderBook, levels: usize, ts_ms: u128) -> String {
    let depth = book.depth(levels);
    let mut json = String::with_capacity(96 + (depth.bids.len() + depth.asks.len()) * 24);
    let _ = write!(
        json,
        "{{\"symbol\":\"{}\",\"seq\":{},\"halted\":{},\"ts_ms\":{},",
        book.symbol(),
        book.seq(),
        book.is_halted(),
        ts_ms
    );
    // The limit prices the price band allows now, so that readers of the book see it.
    match book.band_limits() {
        Some((low, high)) => {
            let _ = write!(json, "\"band\":[{low},{high}],");
        }
        None => json.push_str("\"band\":null,"),
    }
    // When the volatility guard's pause ends, in the journal's milliseconds.
    match book.volatility().3 {
        0 => json.push_str("\"paused_until\":null,"),
        until => {
            let _ = write!(json, "\"paused_until\":{until},");
        }
    }
    for (name, side) in [("bids", &depth.bids), ("asks", &depth.asks)] {
        let _ = write!(json, "\"{name}\":[");
        for (index, (price, qty)) in side.iter().enumerate() {
            let comma = if index == 0 { "" } else { "," };
            let _ = write!(json, "{comma}[{price},{qty}]");
        }
        json.push(']');
        json.push(if name == "bids" { ',' } else { '}' });
    }
    json
}

/// How many orders of a level's queue the queue key lists, oldest first: a position further back
/// is not published (a reader says it is unknown), which bounds the key at `levels` × 2 × this.
pub const QUEUE_ORDERS_PER_LEVEL: usize = 100;

/// The queues of the best `levels` price levels of each side, as the worker writes them at the
/// queue key beside the book key: a first line with the sequence number of the last event
/// reflected, then one line per level, bids best first then asks best first:
/// `b|a price orders total id:qty id:qty ...` (the level's order count and open quantity, then its
/// first orders oldest first, at most [`QUEUE_ORDERS_PER_LEVEL`]).
pub fn queue_text(book: &OrderBook, levels: usize) -> String {
    let mut text = String::with_capacity(64 + levels * 64);
    let _ = writeln!(text, "{}", book.seq());
    for (tag, side) in [("b", Side::Buy), ("a", Side::Sell)] {
        for level in book.level_queues(side, levels, QUEUE_ORDERS_PER_LEVEL) {
            let _ = write!(text, "{tag} {} {} {}", level.price, level.count, level.total);
            for (id, qty) in &level.orders {
                let _ = write!(text, " {id}:{qty}");
            }
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Command, NewOrder, Side};

    #[test]
    fn keys_carry_the_prefix_and_a_hash_tag() {
        let keys = Keys::new("fb", "ACME");
        assert_eq!(keys.journal, "fb:cmd:{ACME}");
        assert_eq!(keys.events, "fb:evt:{ACME}");
        assert_eq!(keys.book, "fb:book:{ACME}");
        assert_eq!(keys.queue, "fb:queue:{ACME}");
    }

    #[test]
    fn a_symbol_belongs_to_the_shard_of_its_cluster_slot() {
        // With 16384 shards the shard is the slot: Redis's documented `CLUSTER KEYSLOT foo` and
        // the CRC-16/XMODEM check value of "123456789".
        assert_eq!(shard_of("foo", 16_384), 12_182);
        assert_eq!(shard_of("123456789", 16_384), 0x31C3);
        assert_eq!(shard_of("ACME", 16_384), 16_164);
        assert_eq!(shard_of("ACME", 2), 0);
        assert_eq!(shard_of("GLOBEX", 2), 1); // slot 6249
        assert_eq!(shard_of("ACME", 1), 0);
        assert_eq!(shard_of("ACME", 0), 0); // no shards given: one
    }

    #[test]
    fn symbols_are_checked() {
        assert!(valid_symbol("BTC-USD.X_1"));
        for bad in ["", "acme", "A B", "A\"B", "{A}", &"X".repeat(33)] {
            assert!(!valid_symbol(bad), "{bad}");
        }
    }

    #[test]
    fn market_data_keeps_levels_trades_and_status_and_ends_with_bbo() {
        let mut book = OrderBook::new("ACME");
        let mut events = Vec::new();
        book.apply(&Command::New(NewOrder::limit(1, 1, Side::Sell, 101, 4)), &mut events);
        book.apply(&Command::New(NewOrder::limit(2, 2, Side::Buy, 101, 1)), &mut events);
        let text = market_data_message(&book, 1, book.seq(), &events);
        let kinds: Vec<&str> = text.lines().map(|l| l.split(' ').nth(1).unwrap_or("")).collect();
        assert_eq!(text.lines().next(), Some("M 1 5"));
        assert_eq!(kinds[1..4], ["L", "T", "L"]);
        assert_eq!(text.lines().last(), Some("B 5 0 0 101 3"));
    }

    #[test]
    fn book_json_lists_levels_best_first() {
        let mut book = OrderBook::new("ACME");
        let mut events = Vec::new();
        for (id, side, price) in [(1, Side::Buy, 99), (2, Side::Buy, 98), (3, Side::Sell, 101)] {
            book.apply(&Command::New(NewOrder::limit(id, 1, side, price, 2)), &mut events);
        }
        assert_eq!(
            book_json(&book, 20, 7),
            r#"{"symbol":"ACME","seq":6,"halted":false,"ts_ms":7,"band":null,"paused_until":null,"bids":[[99,2],[98,2]],"asks":[[101,2]]}"#
        );
        book.apply(&Command::Band { bps: 1_000, reference: 100 }, &mut events);
        assert!(book_json(&book, 1, 7).contains(r#""band":[90,110],"paused_until":null,"bids":[[99,2]]"#));
    }

    #[test]
    fn queue_text_lists_the_best_levels_queues_oldest_first() {
        let mut book = OrderBook::new("ACME");
        let mut events = Vec::new();
        for (id, account, side, price, qty) in
            [(1, 1, Side::Buy, 99, 2), (2, 2, Side::Buy, 99, 5), (3, 1, Side::Buy, 98, 1), (4, 3, Side::Sell, 101, 7)]
        {
            book.apply(&Command::New(NewOrder::limit(id, account, side, price, qty)), &mut events);
        }
        assert_eq!(queue_text(&book, 20), "8\nb 99 2 7 1:2 2:5\nb 98 1 1 3:1\na 101 1 7 4:7\n");
        assert_eq!(queue_text(&book, 1), "8\nb 99 2 7 1:2 2:5\na 101 1 7 4:7\n");
        for id in 5..5 + QUEUE_ORDERS_PER_LEVEL as u64 {
            book.apply(&Command::New(NewOrder::limit(id, 9, Side::Sell, 102, 1)), &mut events);
        }
        let text = queue_text(&book, 2);
        let level = text.lines().last().unwrap();
        assert!(level.starts_with("a 102 100 100 5:1 6:1 "), "{level}");
        book.apply(&Command::New(NewOrder::limit(500, 9, Side::Sell, 102, 1)), &mut events);
        let text = queue_text(&book, 2);
        let level = text.lines().last().unwrap();
        assert!(level.starts_with("a 102 101 101 5:1 "), "{level}");
        assert_eq!(level.split(' ').count(), 4 + QUEUE_ORDERS_PER_LEVEL, "listed up to the cap");
        assert_eq!(queue_text(&OrderBook::new("EMPTY"), 20), "0\n");
    }
}
