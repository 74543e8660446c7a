//! Wire forms of commands and events (see `docs/protocol.md`).
//!
//! Commands arrive as Redis Stream entries: flat field/value pairs of short ASCII tokens, decoded
//! here without JSON. Events leave as compact text lines, one line per event, so that one stream
//! entry can carry all the events of one command and any client can parse them with a split.

use crate::types::*;
use std::fmt::Write as _;

/// The journal protocol version this codec speaks. An entry may carry `v`; absent means 1.
pub const PROTOCOL_VERSION: u32 = 1;

/// A decoded journal entry: the command and where to send its immediate outcome, if anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub command: Command,
    pub reply_to: Option<Vec<u8>>,
}

/// A journal entry that is not a valid command. Carries what could be read of it, so the
/// rejection can still name the order and account, and a human-readable reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub order_id: OrderId,
    pub account: AccountId,
    pub client_ref: u64,
    pub command: Option<CommandKind>,
    pub reply_to: Option<Vec<u8>>,
    pub detail: String,
}

struct Fields<'a> {
    pairs: &'a [(&'a [u8], &'a [u8])],
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.pairs.iter().find(|(key, _)| *key == name.as_bytes()).map(|(_, value)| *value)
    }

    fn text(&self, name: &str) -> Result<Option<&'a str>, String> {
        self.get(name)
            .map(|raw| std::str::from_utf8(raw).map_err(|_| format!("field `{name}` is not UTF-8")))
            .transpose()
    }

    fn int<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.text(name)?
            .map(|text| text.parse::<T>().map_err(|_| format!("field `{name}` is not a valid integer: {:.40}", text)))
            .transpose()
    }

    fn required_int<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        self.int(name)?.ok_or_else(|| format!("missing field `{name}`"))
    }

    fn choice<T: Copy>(&self, name: &str, default: Option<T>, options: &[(&str, T)]) -> Result<T, String> {
        match self.text(name)? {
            None => default.ok_or_else(|| format!("missing field `{name}`")),
            Some(text) => options.iter().find(|(token, _)| *token == text).map(|(_, value)| *value).ok_or_else(|| {
                let allowed: Vec<&str> = options.iter().map(|(token, _)| *token).collect();
                format!("field `{name}` must be one of {}, got {:.40}", allowed.join("|"), text)
            }),
        }
    }
}

const SIDES: &[(&str, Side)] = &[("buy", Side::Buy), ("sell", Side::Sell)];
const ORDER_TYPES: &[(&str, OrderType)] = &[("limit", OrderType::Limit), ("market", OrderType::Market)];
const TIFS: &[(&str, TimeInForce)] = &[("gtc", TimeInForce::Gtc), ("ioc", TimeInForce::Ioc), ("fok", TimeInForce::Fok)];
const STP_MODES: &[(&str, StpMode)] = &[
    ("none", StpMode::None),
    ("cancel_newest", StpMode::CancelNewest),
    ("cancel_oldest", StpMode::CancelOldest),
    ("cancel_both", StpMode::CancelBoth),
];
const FLAGS: &[(&str, bool)] = &[("0", false), ("1", true)];
const COMMAND_KINDS: &[(&str, CommandKind)] = &[
    ("new", CommandKind::New),
    ("cancel", CommandKind::Cancel),
    ("replace", CommandKind::Replace),
    ("halt", CommandKind::Halt),
    ("resume", CommandKind::Resume),
    ("reset", CommandKind::Reset),
    ("band", CommandKind::Band),
    ("volatility", CommandKind::Volatility),
    ("fees", CommandKind::Fees),
    ("clock", CommandKind::Clock),
];

/// Decodes one journal entry's field/value pairs. Unknown fields are ignored, so producers can
/// add optional fields without breaking older engines; a `v` above [`PROTOCOL_VERSION`] is refused.
pub fn decode_command(pairs: &[(&[u8], &[u8])]) -> Result<Decoded, DecodeError> {
    let fields = Fields { pairs };
    let reply_to = fields.get("reply").filter(|key| !key.is_empty()).map(<[u8]>::to_vec);
    let kind = fields.choice("t", None, COMMAND_KINDS).ok();
    let fail = |detail: String| DecodeError {
        order_id: fields.int("id").ok().flatten().unwrap_or(0),
        account: fields.int("acct").ok().flatten().unwrap_or(0),
        client_ref: fields.int("ref").ok().flatten().unwrap_or(0),
        command: kind,
        reply_to: reply_to.clone(),
        detail,
    };
    let command = decode_fields(&fields).map_err(fail)?;
    Ok(Decoded { command, reply_to })
}

fn decode_fields(fields: &Fields) -> Result<Command, String> {
    if let Some(version) = fields.int::<u32>("v")? {
        if version > PROTOCOL_VERSION {
            return Err(format!("protocol version {version} is newer than this engine's {PROTOCOL_VERSION}"));
        }
    }
    Ok(match fields.choice("t", None, COMMAND_KINDS)? {
        CommandKind::New => {
            let order_type = fields.choice("type", Some(OrderType::Limit), ORDER_TYPES)?;
            let default_tif = if order_type == OrderType::Market { TimeInForce::Ioc } else { TimeInForce::Gtc };
            Command::New(NewOrder {
                order_id: fields.required_int("id")?,
                account: fields.required_int("acct")?,
                side: fields.choice("side", None, SIDES)?,
                order_type,
                tif: fields.choice("tif", Some(default_tif), TIFS)?,
                price: match order_type {
                    OrderType::Limit => fields.required_int("px")?,
                    OrderType::Market => fields.int("px")?.unwrap_or(0),
                },
                qty: fields.required_int("qty")?,
                post_only: fields.choice("post", Some(false), FLAGS)?,
                stp: fields.choice("stp", Some(StpMode::None), STP_MODES)?,
                max_position: match fields.int::<Qty>("maxpos")? {
                    Some(limit) if limit < 0 => {
                        return Err(format!("field `maxpos` must not be negative, got {limit}"))
                    }
                    limit => limit,
                },
                client_ref: fields.int("ref")?.unwrap_or(0),
            })
        }
        CommandKind::Cancel => {
            Command::Cancel { order_id: fields.required_int("id")?, account: fields.required_int("acct")? }
        }
        CommandKind::Replace => {
            let price = fields.int("px")?;
            let qty = fields.int("qty")?;
            if price.is_none() && qty.is_none() {
                return Err("a replace needs `px`, `qty` or both".to_owned());
            }
            Command::Replace { order_id: fields.required_int("id")?, account: fields.required_int("acct")?, price, qty }
        }
        CommandKind::Halt => Command::Halt,
        CommandKind::Resume => Command::Resume,
        CommandKind::Reset => Command::Reset,
        CommandKind::Band => {
            let bps: u32 = fields.required_int("bps")?;
            if bps > MAX_BAND_BPS {
                return Err(format!("field `bps` must be at most {MAX_BAND_BPS}, got {bps}"));
            }
            Command::Band { bps, reference: fields.int("px")?.unwrap_or(0) }
        }
        // The book judges the values (an invalid guard or fee schedule is rejected, not malformed).
        CommandKind::Volatility => Command::Volatility {
            bps: fields.required_int("bps")?,
            window_ms: fields.int("win")?.unwrap_or(0),
            pause_ms: fields.int("pause")?.unwrap_or(0),
        },
        CommandKind::Fees => {
            Command::Fees { maker_bps: fields.required_int("maker")?, taker_bps: fields.required_int("taker")? }
        }
        CommandKind::Clock => Command::Clock,
    })
}

/// The journal fields of a command, in the order [`decode_command`] documents. The inverse of
/// decoding (used by tools, tests and benchmarks that write the journal from Rust).
pub fn encode_command(command: &Command) -> Vec<(&'static str, String)> {
    let mut fields = vec![("t", command.kind().as_str().to_owned())];
    match *command {
        Command::New(o) => {
            fields.push(("id", o.order_id.to_string()));
            fields.push(("acct", o.account.to_string()));
            fields.push(("side", o.side.as_str().to_owned()));
            if o.order_type != OrderType::Limit {
                fields.push(("type", o.order_type.as_str().to_owned()));
            }
            fields.push(("tif", o.tif.as_str().to_owned()));
            if o.order_type == OrderType::Limit {
                fields.push(("px", o.price.to_string()));
            }
            fields.push(("qty", o.qty.to_string()));
            if o.post_only {
                fields.push(("post", "1".to_owned()));
            }
            if o.stp != StpMode::None {
                fields.push(("stp", o.stp.as_str().to_owned()));
            }
            if let Some(max_position) = o.max_position {
                fields.push(("maxpos", max_position.to_string()));
            }
            if o.client_ref != 0 {
                fields.push(("ref", o.client_ref.to_string()));
            }
        }
        Command::Cancel { order_id, account } => {
            fields.push(("id", order_id.to_string()));
            fields.push(("acct", account.to_string()));
        }
        Command::Replace { order_id, account, price, qty } => {
            fields.push(("id", order_id.to_string()));
            fields.push(("acct", account.to_string()));
            if let Some(price) = price {
                fields.push(("px", price.to_string()));
            }
            if let Some(qty) = qty {
                fields.push(("qty", qty.to_string()));
            }
        }
        Command::Halt | Command::Resume | Command::Reset | Command::Clock => {}
        Command::Band { bps, reference } => {
            fields.push(("bps", bps.to_string()));
            fields.push(("px", reference.to_string()));
        }
        Command::Volatility { bps, window_ms, pause_ms } => {
            fields.push(("bps", bps.to_string()));
            fields.push(("win", window_ms.to_string()));
            fields.push(("pause", pause_ms.to_string()));
        }
        Command::Fees { maker_bps, taker_bps } => {
            fields.push(("maker", maker_bps.to_string()));
            fields.push(("taker", taker_bps.to_string()));
        }
    }
    fields
}

/// Appends one text line per event (`\n`-terminated): the sequence number, a one-letter kind and
/// the kind's fields, space-separated (see `docs/protocol.md`).
pub fn encode_events(events: &[Event], out: &mut String) {
    for event in events {
        encode_event(event, out);
    }
}

pub fn encode_event(event: &Event, out: &mut String) {
    let seq = event.seq;
    // Writing to a String cannot fail.
    let _ = match event.kind {
        EventKind::Accepted { order_id, account, side, order_type, tif, price, qty, post_only, client_ref } => writeln!(
            out,
            "{seq} A {order_id} {account} {} {} {} {price} {qty} {} {client_ref}",
            side.as_str(),
            order_type.as_str(),
            tif.as_str(),
            post_only as u8
        ),
        EventKind::Rejected { order_id, account, command, reason, client_ref } => {
            writeln!(out, "{seq} J {order_id} {account} {} {} {client_ref}", command.as_str(), reason.as_str())
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
        } => writeln!(
            out,
            "{seq} T {maker_order_id} {maker_account} {taker_order_id} {taker_account} {price} {qty} {} {maker_remaining} {taker_remaining} {maker_fee_bps} {taker_fee_bps}",
            aggressor.as_str()
        ),
        EventKind::Cancelled { order_id, account, side, price, qty, reason } => {
            writeln!(out, "{seq} C {order_id} {account} {} {price} {qty} {}", side.as_str(), reason.as_str())
        }
        EventKind::Replaced { order_id, account, side, old_price, old_qty, price, qty, kept_priority } => writeln!(
            out,
            "{seq} R {order_id} {account} {} {old_price} {old_qty} {price} {qty} {}",
            side.as_str(),
            kept_priority as u8
        ),
        EventKind::Level { side, price, qty } => writeln!(out, "{seq} L {} {price} {qty}", side.as_str()),
        EventKind::Status { status } => writeln!(out, "{seq} S {}", status.as_str()),
    };
}

/// Parses event lines written by [`encode_events`]. For clients and tests; the engine only writes.
pub fn decode_events(text: &str) -> Result<Vec<Event>, String> {
    text.lines().filter(|line| !line.is_empty()).map(decode_event).collect()
}

struct Line<'a> {
    line: &'a str,
    parts: Vec<&'a str>,
}

impl Line<'_> {
    fn bad(&self) -> String {
        format!("malformed event line: {:.80}", self.line)
    }
    fn int(&self, index: usize) -> Result<i64, String> {
        self.parts.get(index).and_then(|p| p.parse().ok()).ok_or_else(|| self.bad())
    }
    fn uint(&self, index: usize) -> Result<u64, String> {
        self.parts.get(index).and_then(|p| p.parse().ok()).ok_or_else(|| self.bad())
    }
    fn pick<T: Copy>(&self, index: usize, options: &[(&str, T)]) -> Result<T, String> {
        let part = self.parts.get(index).ok_or_else(|| self.bad())?;
        options.iter().find(|(token, _)| token == part).map(|(_, value)| *value).ok_or_else(|| self.bad())
    }
    fn expect(&self, count: usize) -> Result<(), String> {
        if self.parts.len() == count {
            Ok(())
        } else {
            Err(self.bad())
        }
    }
}

fn decode_event(line: &str) -> Result<Event, String> {
    let l = Line { line, parts: line.split(' ').collect() };
    let (int, uint) = (|i| l.int(i), |i| l.uint(i));
    let side = |i| l.pick(i, SIDES);
    let flag = |i| l.pick(i, FLAGS);
    let expect = |n| l.expect(n);
    let bad = || l.bad();
    let seq = uint(0)?;
    let kind = match *l.parts.get(1).ok_or_else(bad)? {
        "A" => {
            expect(11)?;
            EventKind::Accepted {
                order_id: uint(2)?,
                account: uint(3)?,
                side: side(4)?,
                order_type: l.pick(5, ORDER_TYPES)?,
                tif: l.pick(6, TIFS)?,
                price: int(7)?,
                qty: int(8)?,
                post_only: flag(9)?,
                client_ref: uint(10)?,
            }
        }
        "J" => {
            expect(7)?;
            EventKind::Rejected {
                order_id: uint(2)?,
                account: uint(3)?,
                command: l.pick(4, COMMAND_KINDS)?,
                reason: l.pick(5, REJECT_REASONS)?,
                client_ref: uint(6)?,
            }
        }
        "T" => {
            expect(13)?;
            EventKind::Trade {
                maker_order_id: uint(2)?,
                maker_account: uint(3)?,
                taker_order_id: uint(4)?,
                taker_account: uint(5)?,
                price: int(6)?,
                qty: int(7)?,
                aggressor: side(8)?,
                maker_remaining: int(9)?,
                taker_remaining: int(10)?,
                maker_fee_bps: int(11)?.try_into().map_err(|_| bad())?,
                taker_fee_bps: int(12)?.try_into().map_err(|_| bad())?,
            }
        }
        "C" => {
            expect(8)?;
            EventKind::Cancelled {
                order_id: uint(2)?,
                account: uint(3)?,
                side: side(4)?,
                price: int(5)?,
                qty: int(6)?,
                reason: l.pick(7, CANCEL_REASONS)?,
            }
        }
        "R" => {
            expect(10)?;
            EventKind::Replaced {
                order_id: uint(2)?,
                account: uint(3)?,
                side: side(4)?,
                old_price: int(5)?,
                old_qty: int(6)?,
                price: int(7)?,
                qty: int(8)?,
                kept_priority: flag(9)?,
            }
        }
        "L" => {
            expect(5)?;
            EventKind::Level { side: side(2)?, price: int(3)?, qty: int(4)? }
        }
        "S" => {
            expect(3)?;
            EventKind::Status { status: l.pick(2, STATUSES)? }
        }
        _ => return Err(bad()),
    };
    Ok(Event { seq, kind })
}

const REJECT_REASONS: &[(&str, RejectReason)] = &[
    ("INVALID_QUANTITY", RejectReason::InvalidQuantity),
    ("INVALID_PRICE", RejectReason::InvalidPrice),
    ("DUPLICATE_ORDER_ID", RejectReason::DuplicateOrderId),
    ("UNKNOWN_ORDER", RejectReason::UnknownOrder),
    ("BOOK_HALTED", RejectReason::BookHalted),
    ("POST_ONLY_WOULD_CROSS", RejectReason::PostOnlyWouldCross),
    ("POSITION_LIMIT", RejectReason::PositionLimit),
    ("INVALID_TIME_IN_FORCE", RejectReason::InvalidTimeInForce),
    ("INVALID_POST_ONLY", RejectReason::InvalidPostOnly),
    ("MALFORMED", RejectReason::Malformed),
    ("PRICE_OUT_OF_BAND", RejectReason::PriceOutOfBand),
    ("INVALID_BAND", RejectReason::InvalidBand),
    ("VOLATILITY_PAUSE", RejectReason::VolatilityPause),
    ("INVALID_VOLATILITY", RejectReason::InvalidVolatility),
    ("INVALID_FEES", RejectReason::InvalidFees),
];
const CANCEL_REASONS: &[(&str, CancelReason)] = &[
    ("USER", CancelReason::User),
    ("REMAINDER", CancelReason::Remainder),
    ("FOK_UNFILLABLE", CancelReason::FokUnfillable),
    ("SELF_TRADE", CancelReason::SelfTrade),
    ("RESET", CancelReason::Reset),
    ("PRICE_BAND", CancelReason::PriceBand),
];
const STATUSES: &[(&str, BookStatus)] = &[
    ("HALTED", BookStatus::Halted),
    ("RESUMED", BookStatus::Resumed),
    ("RESET", BookStatus::Reset),
    ("BAND", BookStatus::Band),
    ("PAUSED", BookStatus::Paused),
    ("PAUSE_ENDED", BookStatus::PauseEnded),
    ("VOLATILITY", BookStatus::Volatility),
    ("FEES", BookStatus::Fees),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::OrderBook;

    fn pairs(fields: &[(&'static str, &'static str)]) -> Vec<(&'static [u8], &'static [u8])> {
        fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect()
    }

    #[test]
    fn decodes_a_new_order_with_defaults() {
        let entry = pairs(&[("t", "new"), ("id", "7"), ("acct", "3"), ("side", "buy"), ("px", "100"), ("qty", "5")]);
        let decoded = decode_command(&entry).unwrap();
        assert_eq!(decoded.command, Command::New(NewOrder::limit(7, 3, Side::Buy, 100, 5)));
        assert_eq!(decoded.reply_to, None);
    }

    #[test]
    fn market_orders_default_to_ioc_and_need_no_price() {
        let entry =
            pairs(&[("t", "new"), ("id", "7"), ("acct", "3"), ("side", "sell"), ("type", "market"), ("qty", "5")]);
        assert_eq!(decode_command(&entry).unwrap().command, Command::New(NewOrder::market(7, 3, Side::Sell, 5)));
    }

    #[test]
    fn round_trips_every_command_through_fields() {
        let commands = [
            Command::New(
                NewOrder::limit(1, 2, Side::Sell, 10, 3)
                    .with_post_only()
                    .with_stp(StpMode::CancelBoth)
                    .with_max_position(40)
                    .with_client_ref(77),
            ),
            Command::New(NewOrder::market(2, 2, Side::Buy, 3).with_tif(TimeInForce::Fok)),
            Command::Cancel { order_id: 1, account: 2 },
            Command::Replace { order_id: 1, account: 2, price: Some(11), qty: None },
            Command::Replace { order_id: 1, account: 2, price: None, qty: Some(1) },
            Command::Halt,
            Command::Resume,
            Command::Reset,
            Command::Band { bps: 500, reference: 1_000 },
            Command::Volatility { bps: 500, window_ms: 300_000, pause_ms: 60_000 },
            Command::Fees { maker_bps: -1, taker_bps: 3 },
            Command::Clock,
        ];
        for command in commands {
            let fields = encode_command(&command);
            let raw: Vec<(&[u8], &[u8])> = fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
            assert_eq!(decode_command(&raw).unwrap().command, command);
        }
    }

    #[test]
    fn reports_what_is_wrong_and_what_it_could_read() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "missing field `t`"),
            (&[("t", "explode")], "field `t` must be one of"),
            (&[("t", "new"), ("id", "5"), ("acct", "9"), ("side", "buy"), ("qty", "1")], "missing field `px`"),
            (&[("t", "new"), ("id", "5"), ("acct", "9"), ("side", "up"), ("px", "1"), ("qty", "1")], "field `side`"),
            (&[("t", "new"), ("id", "5"), ("acct", "9"), ("side", "buy"), ("px", "1.5"), ("qty", "1")], "field `px`"),
            (
                &[
                    ("t", "new"),
                    ("id", "5"),
                    ("acct", "9"),
                    ("side", "buy"),
                    ("px", "1"),
                    ("qty", "99999999999999999999999"),
                ],
                "field `qty`",
            ),
            (&[("t", "cancel"), ("id", "-1"), ("acct", "9")], "field `id`"),
            (&[("t", "replace"), ("id", "5"), ("acct", "9")], "needs `px`, `qty`"),
            (&[("t", "halt"), ("v", "2")], "protocol version 2"),
        ];
        for (fields, expected) in cases {
            let error = decode_command(&pairs(fields)).unwrap_err();
            assert!(error.detail.contains(expected), "{:?} -> {}", fields, error.detail);
        }
        let error = decode_command(&pairs(&[("t", "new"), ("id", "5"), ("acct", "9"), ("reply", "r:1")])).unwrap_err();
        assert_eq!((error.order_id, error.account, error.command), (5, 9, Some(CommandKind::New)));
        assert_eq!(error.reply_to.as_deref(), Some(&b"r:1"[..]));
    }

    #[test]
    fn non_utf8_bytes_are_an_error_not_a_panic() {
        let entry: Vec<(&[u8], &[u8])> = vec![(b"t", b"new"), (b"id", &[0xff, 0xfe])];
        assert!(decode_command(&entry).unwrap_err().detail.contains("not UTF-8"));
    }

    #[test]
    fn events_round_trip_through_text() {
        let mut book = OrderBook::new("X");
        let mut events = Vec::new();
        for command in [
            Command::Fees { maker_bps: -2, taker_bps: 5 },
            Command::New(NewOrder::limit(1, 1, Side::Sell, 100, 5)),
            Command::New(NewOrder::limit(2, 2, Side::Buy, 101, 7).with_tif(TimeInForce::Ioc)),
            Command::New(NewOrder::limit(3, 2, Side::Buy, 99, 7)),
            Command::Replace { order_id: 3, account: 2, price: Some(98), qty: Some(2) },
            Command::Cancel { order_id: 42, account: 2 },
            Command::Halt,
            Command::Reset,
        ] {
            book.apply(&command, &mut events);
        }
        let mut text = String::new();
        encode_events(&events, &mut text);
        assert_eq!(decode_events(&text).unwrap(), events);
        assert!(decode_events("1 Q nonsense").is_err());
        assert!(decode_events("1 L buy 5").is_err());
    }
}
