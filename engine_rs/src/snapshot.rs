//! Snapshots (bytes that restore a book exactly) and the state hash (a fingerprint of the state
//! that matters for matching, to compare two books cheaply).
//!
//! Snapshot layout: `MAGIC`, a little-endian u16 format version, the postcard-encoded
//! [`SnapshotV3`] (version 1: [`SnapshotV1`], before the price band; version 2: [`SnapshotV2`],
//! before the volatility guard and fees; both still read: a book restored from one has none of
//! the later rules until they are set), then a little-endian xxh3-64 of everything before
//! it. Restore checks all of it and validates the content, so a truncated or corrupted snapshot is
//! an error, never a wrong book.

use crate::book::{OrderBook, RestingOrder};
use crate::types::*;
use crate::volatility::VolatilityWindow;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

const MAGIC: &[u8; 6] = b"FBSNAP";
const FORMAT_VERSION: u16 = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a Flashbook snapshot (bad magic or too short)")]
    NotASnapshot,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u16),
    #[error("snapshot checksum mismatch (truncated or corrupted)")]
    Checksum,
    #[error("snapshot could not be decoded: {0}")]
    Decode(String),
    #[error("snapshot content is inconsistent: {0}")]
    Invalid(&'static str),
}

#[derive(Serialize, Deserialize)]
struct SnapshotOrder {
    order_id: OrderId,
    account: AccountId,
    side: Side,
    price: Price,
    qty: Qty,
    stp: StpMode,
    post_only: bool,
    max_position: Option<Qty>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotV1 {
    symbol: String,
    seq: Seq,
    halted: bool,
    last_order_id: OrderId,
    /// In priority order, so re-inserting them one by one rebuilds every queue exactly.
    orders: Vec<SnapshotOrder>,
    /// Non-zero positions by account id.
    positions: Vec<(AccountId, Qty)>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotV2 {
    book: SnapshotV1,
    /// The price band: width in basis points, the BAND's reference, the last trade's price.
    band_bps: u32,
    band_reference: Price,
    last_trade_price: Price,
}

#[derive(Serialize, Deserialize)]
struct SnapshotV3 {
    v2: SnapshotV2,
    /// The journal's clock as the book last saw it (milliseconds).
    now_ms: u64,
    /// The volatility guard: move in basis points, window and pause in milliseconds, when the
    /// current pause ends (0: none), and the window's queues of candidate lowest and highest
    /// trades `(ms, price)`, oldest first.
    volatility: (u32, u64, u64, u64),
    window: VolatilityWindow,
    /// Maker and taker fee rates, basis points.
    fees: (i32, i32),
}

impl OrderBook {
    /// The book's state without the price band: version 1's whole body, version 2's first part.
    fn snapshot_book(&self) -> SnapshotV1 {
        SnapshotV1 {
            symbol: self.symbol().to_owned(),
            seq: self.seq(),
            halted: self.is_halted(),
            last_order_id: self.last_order_id(),
            orders: self
                .resting_orders()
                .into_iter()
                .map(|o| SnapshotOrder {
                    order_id: o.order_id,
                    account: o.account,
                    side: o.side,
                    price: o.price,
                    qty: o.qty,
                    stp: o.stp,
                    post_only: o.post_only,
                    max_position: o.max_position,
                })
                .collect(),
            positions: self
                .exposures()
                .into_iter()
                .filter(|(_, exposure)| exposure.position != 0)
                .map(|(account, exposure)| (account, exposure.position))
                .collect(),
        }
    }

    /// The book's full state as bytes; [`OrderBook::restore`] turns them back into an identical book.
    pub fn snapshot(&self) -> Vec<u8> {
        let book = self.snapshot_book();
        let (band_bps, band_reference, last_trade_price) = self.band();
        let v2 = SnapshotV2 { book, band_bps, band_reference, last_trade_price };
        let body = SnapshotV3 {
            v2,
            now_ms: self.now_ms(),
            volatility: self.volatility(),
            window: self.volatility_window(),
            fees: self.fees(),
        };
        let mut bytes = Vec::with_capacity(64 + body.v2.book.orders.len() * 24);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&postcard::to_allocvec(&body).expect("in-memory serialisation cannot fail"));
        let checksum = xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Rebuilds a book from [`OrderBook::snapshot`] bytes, after checking them thoroughly.
    pub fn restore(bytes: &[u8]) -> Result<OrderBook, SnapshotError> {
        let header = MAGIC.len() + 2;
        if bytes.len() < header + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        let version = u16::from_le_bytes([bytes[MAGIC.len()], bytes[MAGIC.len() + 1]]);
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let (content, checksum) = bytes.split_at(bytes.len() - 8);
        if xxh3_64(content).to_le_bytes() != checksum {
            return Err(SnapshotError::Checksum);
        }
        let decode = |error: postcard::Error| SnapshotError::Decode(error.to_string());
        let payload = &content[header..];
        let v3 = match version {
            1 => SnapshotV3::from(SnapshotV2 {
                book: postcard::from_bytes(payload).map_err(decode)?,
                band_bps: 0,
                band_reference: 0,
                last_trade_price: 0,
            }),
            2 => SnapshotV3::from(postcard::from_bytes::<SnapshotV2>(payload).map_err(decode)?),
            _ => postcard::from_bytes::<SnapshotV3>(payload).map_err(decode)?,
        };
        let SnapshotV3 { v2, now_ms, volatility, window, fees } = v3;
        let band = (v2.band_bps, v2.band_reference, v2.last_trade_price);
        let body = v2.book;
        validate(&body)?;
        validate_rules(volatility, &window, fees)?;
        let (band_bps, band_reference, last_trade_price) = band;
        if band_bps > MAX_BAND_BPS
            || (band_bps > 0 && !(1..=MAX_PRICE).contains(&band_reference))
            || !(0..=MAX_PRICE).contains(&last_trade_price)
        {
            return Err(SnapshotError::Invalid("price band out of range"));
        }

        let mut book = OrderBook::with_capacity(&body.symbol, body.orders.len());
        book.set_restored_header(body.seq, body.halted, body.last_order_id);
        book.set_restored_band(band_bps, band_reference, last_trade_price);
        book.set_restored_rules(now_ms, volatility, &window, fees);
        for order in &body.orders {
            book.restore_order(&RestingOrder {
                order_id: order.order_id,
                account: order.account,
                side: order.side,
                price: order.price,
                qty: order.qty,
                stp: order.stp,
                post_only: order.post_only,
                max_position: order.max_position,
            });
        }
        for &(account, position) in &body.positions {
            book.accounts.set_position(account, position);
        }
        let bbo = book.bbo();
        if let (Some((bid, _)), Some((ask, _))) = (bbo.bid, bbo.ask) {
            if bid >= ask {
                return Err(SnapshotError::Invalid("crossed book"));
            }
        }
        Ok(book)
    }

    /// A 64-bit fingerprint of everything that decides future matching: sequence, halt state, id
    /// high-water, resting orders in priority order, positions, and the price band. Equal books hash equal however
    /// they were reached (live, replayed, or restored from a snapshot).
    pub fn state_hash(&self) -> u64 {
        let mut hasher = Xxh3::new();
        hasher.update(&self.seq().to_le_bytes());
        hasher.update(&[self.is_halted() as u8]);
        hasher.update(&self.last_order_id().to_le_bytes());
        let orders = self.resting_orders();
        hasher.update(&(orders.len() as u64).to_le_bytes());
        for o in &orders {
            hasher.update(&o.order_id.to_le_bytes());
            hasher.update(&o.account.to_le_bytes());
            hasher.update(&[o.side as u8, o.stp as u8, o.post_only as u8]);
            hasher.update(&o.price.to_le_bytes());
            hasher.update(&o.qty.to_le_bytes());
            // A tag, then the limit: no limit and every limit hash apart.
            match o.max_position {
                None => hasher.update(&[0]),
                Some(limit) => {
                    hasher.update(&[1]);
                    hasher.update(&limit.to_le_bytes());
                }
            }
        }
        for (account, exposure) in self.exposures() {
            if exposure.position != 0 {
                hasher.update(&account.to_le_bytes());
                hasher.update(&exposure.position.to_le_bytes());
            }
        }
        let (band_bps, band_reference, last_trade_price) = self.band();
        if band_bps > 0 {
            // Only with a band: the hash of a book without one is what it always was.
            hasher.update(&band_bps.to_le_bytes());
            hasher.update(&band_reference.to_le_bytes());
            hasher.update(&last_trade_price.to_le_bytes());
        }
        // Likewise only when set: the guard (with its window and pause, which decide what later
        // commands may do) and the fee rates (which later trades carry).
        let volatility = self.volatility();
        if volatility.0 > 0 || volatility.3 > 0 {
            hasher.update(b"volatility");
            hasher.update(&volatility.0.to_le_bytes());
            hasher.update(&volatility.1.to_le_bytes());
            hasher.update(&volatility.2.to_le_bytes());
            hasher.update(&volatility.3.to_le_bytes());
            let (lows, highs) = self.volatility_window();
            for queue in [lows, highs] {
                hasher.update(&(queue.len() as u64).to_le_bytes());
                for (at, price) in queue {
                    hasher.update(&at.to_le_bytes());
                    hasher.update(&price.to_le_bytes());
                }
            }
        }
        if self.fees() != (0, 0) {
            hasher.update(b"fees");
            hasher.update(&self.fees().0.to_le_bytes());
            hasher.update(&self.fees().1.to_le_bytes());
        }
        hasher.digest()
    }
}

impl From<SnapshotV2> for SnapshotV3 {
    /// An older snapshot: no clock, no volatility guard, no fees.
    fn from(v2: SnapshotV2) -> Self {
        SnapshotV3 { v2, now_ms: 0, volatility: (0, 0, 0, 0), window: (Vec::new(), Vec::new()), fees: (0, 0) }
    }
}

fn validate_rules(
    volatility: (u32, u64, u64, u64),
    window: &VolatilityWindow,
    fees: (i32, i32),
) -> Result<(), SnapshotError> {
    let (bps, window_ms, pause_ms, _) = volatility;
    if bps > MAX_VOLATILITY_BPS || window_ms > MAX_VOLATILITY_MS || pause_ms > MAX_VOLATILITY_MS {
        return Err(SnapshotError::Invalid("volatility guard out of range"));
    }
    let (lows, highs) = window;
    let in_range = |queue: &Vec<(u64, Price)>| queue.iter().all(|&(_, price)| (1..=MAX_PRICE).contains(&price));
    let lows_ok = lows.is_sorted_by(|a, b| a.0 <= b.0 && a.1 < b.1);
    let highs_ok = highs.is_sorted_by(|a, b| a.0 <= b.0 && a.1 > b.1);
    if !(in_range(lows) && in_range(highs) && lows_ok && highs_ok) {
        return Err(SnapshotError::Invalid("volatility window out of order or range"));
    }
    let (maker, taker) = fees;
    if !(0..=MAX_FEE_BPS).contains(&taker) || !(-taker..=MAX_FEE_BPS).contains(&maker) {
        return Err(SnapshotError::Invalid("fee rates out of range"));
    }
    Ok(())
}

fn validate(body: &SnapshotV1) -> Result<(), SnapshotError> {
    let mut seen = rustc_hash::FxHashSet::default();
    let mut previous: Option<(Side, Price)> = None;
    for order in &body.orders {
        if order.qty <= 0 || order.qty > MAX_QTY {
            return Err(SnapshotError::Invalid("order quantity out of range"));
        }
        if order.price <= 0 || order.price > MAX_PRICE {
            return Err(SnapshotError::Invalid("order price out of range"));
        }
        if order.order_id == 0 || order.order_id > body.last_order_id {
            return Err(SnapshotError::Invalid("order id above the id high-water mark"));
        }
        if !seen.insert(order.order_id) {
            return Err(SnapshotError::Invalid("duplicate order id"));
        }
        if let Some((side, price)) = previous {
            let in_priority_order = match (side, order.side) {
                (Side::Buy, Side::Buy) => order.price <= price,
                (Side::Sell, Side::Sell) => order.price >= price,
                (Side::Buy, Side::Sell) => true,
                (Side::Sell, Side::Buy) => false,
            };
            if !in_priority_order {
                return Err(SnapshotError::Invalid("orders not in priority order"));
            }
        }
        previous = Some((order.side, order.price));
    }
    let mut accounts = rustc_hash::FxHashSet::default();
    let mut net: i128 = 0;
    for &(account, position) in &body.positions {
        if !accounts.insert(account) {
            return Err(SnapshotError::Invalid("duplicate account position"));
        }
        net += position as i128;
    }
    if net != 0 {
        // Every trade moves two positions by opposite amounts.
        return Err(SnapshotError::Invalid("positions do not net to zero"));
    }
    if body.seq > u64::MAX / 2 {
        return Err(SnapshotError::Invalid("sequence number out of range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_snapshot_from_before_the_band_restores_without_one() {
        let mut book = OrderBook::new("OLD");
        book.apply_collect(&Command::New(NewOrder::limit(1, 7, Side::Buy, 100, 5)));
        book.apply_collect(&Command::New(NewOrder::limit(2, 8, Side::Sell, 101, 3)));
        // What the engine wrote before the band: the same body, format version 1, no band fields.
        let body = book.snapshot_book();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&postcard::to_allocvec(&body).unwrap());
        let checksum = xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());

        let restored = OrderBook::restore(&bytes).expect("a version 1 snapshot restores");
        assert_eq!(restored.band_limits(), None);
        assert_eq!(restored.state_hash(), book.state_hash());
        assert_eq!(u16::from_le_bytes([book.snapshot()[6], book.snapshot()[7]]), FORMAT_VERSION);
    }

    /// Bytes of a current-format snapshot whose one resting order has `max_position`, as a book
    /// from before negative limits were refused could have written it.
    fn snapshot_with_limit(max_position: Option<Qty>) -> Vec<u8> {
        let mut book = OrderBook::new("OLD");
        book.apply_collect(&Command::New(NewOrder::limit(1, 7, Side::Buy, 100, 5)));
        let mut body = SnapshotV3::from(SnapshotV2 {
            book: book.snapshot_book(),
            band_bps: 0,
            band_reference: 0,
            last_trade_price: 0,
        });
        body.v2.book.orders[0].max_position = max_position;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&postcard::to_allocvec(&body).unwrap());
        let checksum = xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    #[test]
    fn an_old_negative_position_limit_still_restores_and_hashes_apart_from_no_limit() {
        let none = OrderBook::restore(&snapshot_with_limit(None)).unwrap();
        let minus_one = OrderBook::restore(&snapshot_with_limit(Some(-1))).expect("an old snapshot restores");
        assert_eq!(minus_one.order(1).unwrap().max_position, Some(-1));
        assert_ne!(minus_one.state_hash(), none.state_hash());
        // They do behave differently: a larger quantity passes without a limit, not with -1.
        let grow = Command::Replace { order_id: 1, account: 7, price: None, qty: Some(6) };
        let (mut none, mut minus_one) = (none, minus_one);
        assert!(matches!(none.apply_collect(&grow)[0].kind, EventKind::Replaced { .. }));
        assert!(matches!(
            minus_one.apply_collect(&grow)[0].kind,
            EventKind::Rejected { reason: RejectReason::PositionLimit, .. }
        ));
    }
}
