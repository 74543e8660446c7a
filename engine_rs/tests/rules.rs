//! One test per matching rule of the engine, written against the public API.

use engine_rs::*;

const ALICE: AccountId = 1;
const BOB: AccountId = 2;
const CAROL: AccountId = 3;

/// A book plus an order-id counter, so tests read as a market story.
struct Market {
    book: OrderBook,
    next_id: OrderId,
}

impl Market {
    fn new() -> Self {
        Market { book: OrderBook::new("TEST"), next_id: 0 }
    }

    fn id(&mut self) -> OrderId {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, command: Command) -> Vec<Event> {
        let events = self.book.apply_collect(&command);
        assert!(!events.is_empty(), "every command yields at least one event");
        events
    }

    fn submit(&mut self, order: NewOrder) -> Vec<Event> {
        self.send(Command::New(order))
    }

    /// Rests a GTC limit order and returns its id.
    fn limit(&mut self, account: AccountId, side: Side, price: Price, qty: Qty) -> OrderId {
        let id = self.id();
        let events = self.submit(NewOrder::limit(id, account, side, price, qty));
        assert!(matches!(events[0].kind, EventKind::Accepted { .. }), "{events:?}");
        id
    }

    fn cancel(&mut self, order_id: OrderId, account: AccountId) -> Vec<Event> {
        self.send(Command::Cancel { order_id, account })
    }

    fn replace(&mut self, order_id: OrderId, account: AccountId, price: Option<Price>, qty: Option<Qty>) -> Vec<Event> {
        self.send(Command::Replace { order_id, account, price, qty })
    }
}

fn trades(events: &[Event]) -> Vec<(OrderId, OrderId, Price, Qty)> {
    events
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::Trade { maker_order_id, taker_order_id, price, qty, .. } => {
                Some((maker_order_id, taker_order_id, price, qty))
            }
            _ => None,
        })
        .collect()
}

fn cancels(events: &[Event]) -> Vec<(OrderId, Qty, CancelReason)> {
    events
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::Cancelled { order_id, qty, reason, .. } => Some((order_id, qty, reason)),
            _ => None,
        })
        .collect()
}

fn rejection(events: &[Event]) -> Option<RejectReason> {
    match events {
        [Event { kind: EventKind::Rejected { reason, .. }, .. }] => Some(*reason),
        _ => None,
    }
}

fn levels(events: &[Event]) -> Vec<(Side, Price, Qty)> {
    events
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::Level { side, price, qty } => Some((side, price, qty)),
            _ => None,
        })
        .collect()
}

fn queue_at(book: &OrderBook, side: Side, price: Price) -> Vec<OrderId> {
    book.resting_orders().into_iter().filter(|o| o.side == side && o.price == price).map(|o| o.order_id).collect()
}

#[test]
fn price_time_priority_and_trade_at_maker_price() {
    let mut m = Market::new();
    let first = m.limit(ALICE, Side::Sell, 101, 5);
    let second = m.limit(BOB, Side::Sell, 101, 5);
    let better = m.limit(CAROL, Side::Sell, 100, 5);
    let taker = m.id();
    let events = m.submit(NewOrder::limit(taker, 9, Side::Buy, 105, 12));
    assert_eq!(trades(&events), vec![(better, taker, 100, 5), (first, taker, 101, 5), (second, taker, 101, 2)]);
    assert_eq!(m.book.order(second).unwrap().qty, 3);
    assert_eq!(m.book.order(taker), None, "fully filled taker does not rest");
    assert_eq!(levels(&events), vec![(Side::Sell, 100, 0), (Side::Sell, 101, 3)]);
}

#[test]
fn sequence_numbers_are_gap_free_from_one() {
    let mut m = Market::new();
    let mut all = Vec::new();
    let id = m.limit(ALICE, Side::Buy, 99, 3);
    all.extend(m.book.apply_collect(&Command::New(NewOrder::limit(m.next_id + 1, BOB, Side::Sell, 99, 5))));
    all.extend(m.cancel(id, ALICE));
    all.extend(m.send(Command::Halt));
    let seqs: Vec<Seq> = all.iter().map(|e| e.seq).collect();
    let first = seqs[0];
    assert_eq!(first, 3, "the first NEW emitted accepted (1) and level (2)");
    assert_eq!(seqs, (first..first + seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(m.book.seq(), *seqs.last().unwrap());
}

#[test]
fn market_order_remainder_never_rests() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Sell, 100, 3);
    let id = m.id();
    let events = m.submit(NewOrder::market(id, BOB, Side::Buy, 10));
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(cancels(&events), vec![(id, 7, CancelReason::Remainder)]);
    assert_eq!(m.book.order(id), None);
    assert_eq!(m.book.bbo(), Bbo::default());
}

#[test]
fn market_order_into_empty_book_is_cancelled_whole() {
    let mut m = Market::new();
    let id = m.id();
    let events = m.submit(NewOrder::market(id, BOB, Side::Sell, 4));
    assert_eq!(cancels(&events), vec![(id, 4, CancelReason::Remainder)]);
}

#[test]
fn ioc_remainder_never_rests() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Buy, 100, 2);
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, BOB, Side::Sell, 100, 5).with_tif(TimeInForce::Ioc));
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(cancels(&events), vec![(id, 3, CancelReason::Remainder)]);
    assert_eq!(m.book.bbo(), Bbo::default());
}

#[test]
fn fok_fills_fully_or_not_at_all() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Sell, 100, 3);
    m.limit(BOB, Side::Sell, 101, 3);
    let before = m.book.state_hash();
    let too_big = m.id();
    let events = m.submit(NewOrder::limit(too_big, CAROL, Side::Buy, 101, 7).with_tif(TimeInForce::Fok));
    assert!(trades(&events).is_empty());
    assert_eq!(cancels(&events), vec![(too_big, 7, CancelReason::FokUnfillable)]);
    assert_eq!(m.book.depth(5).asks, vec![(100, 3), (101, 3)], "book untouched");
    assert_ne!(m.book.state_hash(), before, "sequence and id high-water moved on");

    let price_limited = m.id();
    let events = m.submit(NewOrder::limit(price_limited, CAROL, Side::Buy, 100, 4).with_tif(TimeInForce::Fok));
    assert!(trades(&events).is_empty(), "liquidity beyond the limit price does not count");

    let fits = m.id();
    let events = m.submit(NewOrder::limit(fits, CAROL, Side::Buy, 101, 6).with_tif(TimeInForce::Fok));
    assert_eq!(trades(&events).iter().map(|t| t.3).sum::<Qty>(), 6);
    assert!(cancels(&events).is_empty());
}

#[test]
fn fok_does_not_count_liquidity_self_trade_prevention_would_skip() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Sell, 100, 5);
    m.limit(BOB, Side::Sell, 100, 5);
    let id = m.id();
    let order =
        NewOrder::limit(id, ALICE, Side::Buy, 100, 6).with_tif(TimeInForce::Fok).with_stp(StpMode::CancelOldest);
    let events = m.submit(order);
    assert!(trades(&events).is_empty());
    assert_eq!(cancels(&events), vec![(id, 6, CancelReason::FokUnfillable)]);
    assert_eq!(m.book.order_count(), 2, "the self order was not cancelled by a FOK that did not trade");
}

#[test]
fn post_only_that_would_cross_is_rejected() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Sell, 100, 5);
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, BOB, Side::Buy, 100, 1).with_post_only());
    assert_eq!(rejection(&events), Some(RejectReason::PostOnlyWouldCross));
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, BOB, Side::Buy, 99, 1).with_post_only());
    assert!(matches!(events[0].kind, EventKind::Accepted { post_only: true, .. }));
    assert_eq!(m.book.bbo().bid, Some((99, 1)));
}

#[test]
fn post_only_only_for_gtc_limit_orders_and_market_orders_need_ioc_or_fok() {
    let mut m = Market::new();
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, BOB, Side::Buy, 99, 1).with_tif(TimeInForce::Ioc).with_post_only());
    assert_eq!(rejection(&events), Some(RejectReason::InvalidPostOnly));
    let id = m.id();
    let events = m.submit(NewOrder::market(id, BOB, Side::Buy, 1).with_tif(TimeInForce::Gtc));
    assert_eq!(rejection(&events), Some(RejectReason::InvalidTimeInForce));
}

#[test]
fn replace_into_a_cross_trades_at_the_makers_price() {
    let mut m = Market::new();
    let ask = m.limit(ALICE, Side::Sell, 102, 4);
    let bid = m.limit(BOB, Side::Buy, 100, 6);
    let events = m.replace(bid, BOB, Some(105), None);
    assert!(matches!(events[0].kind, EventKind::Replaced { kept_priority: false, price: 105, .. }));
    assert_eq!(trades(&events), vec![(ask, bid, 102, 4)]);
    assert_eq!(m.book.order(bid).unwrap().price, 105);
    assert_eq!(m.book.order(bid).unwrap().qty, 2);
    assert_eq!(m.book.bbo().bid, Some((105, 2)));
}

#[test]
fn replace_quantity_down_keeps_priority_up_or_reprice_loses_it() {
    let mut m = Market::new();
    let a = m.limit(ALICE, Side::Buy, 100, 5);
    let b = m.limit(BOB, Side::Buy, 100, 5);
    let events = m.replace(a, ALICE, None, Some(3));
    assert!(matches!(events[0].kind, EventKind::Replaced { kept_priority: true, .. }));
    assert_eq!(levels(&events), vec![(Side::Buy, 100, 8)]);
    assert_eq!(queue_at(&m.book, Side::Buy, 100), vec![a, b]);

    let events = m.replace(a, ALICE, None, Some(4));
    assert!(matches!(events[0].kind, EventKind::Replaced { kept_priority: false, .. }));
    assert_eq!(queue_at(&m.book, Side::Buy, 100), vec![b, a], "an increase goes to the back");
    assert_eq!(levels(&events), vec![(Side::Buy, 100, 9)]);

    let events = m.replace(b, BOB, Some(99), None);
    assert_eq!(levels(&events), vec![(Side::Buy, 100, 4), (Side::Buy, 99, 5)]);
    m.replace(b, BOB, Some(100), None);
    assert_eq!(queue_at(&m.book, Side::Buy, 100), vec![a, b], "a price change goes to the back");
}

#[test]
fn replace_of_a_lone_order_upwards_keeps_its_level_without_a_transient_zero() {
    let mut m = Market::new();
    let a = m.limit(ALICE, Side::Sell, 100, 5);
    let events = m.replace(a, ALICE, None, Some(8));
    assert_eq!(levels(&events), vec![(Side::Sell, 100, 8)]);
    assert_eq!(m.book.bbo().ask, Some((100, 8)));
}

#[test]
fn post_only_replace_into_a_cross_is_rejected_and_order_kept() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Sell, 102, 4);
    let id = m.id();
    m.submit(NewOrder::limit(id, BOB, Side::Buy, 100, 6).with_post_only());
    let events = m.replace(id, BOB, Some(102), None);
    assert_eq!(rejection(&events), Some(RejectReason::PostOnlyWouldCross));
    assert_eq!(m.book.order(id).unwrap().price, 100);
}

#[test]
fn cancel_in_the_middle_of_a_queue_keeps_the_others_in_order() {
    let mut m = Market::new();
    let ids: Vec<OrderId> = (0..5).map(|_| m.limit(ALICE, Side::Sell, 100, 1)).collect();
    let events = m.cancel(ids[2], ALICE);
    assert_eq!(cancels(&events), vec![(ids[2], 1, CancelReason::User)]);
    assert_eq!(levels(&events), vec![(Side::Sell, 100, 4)]);
    assert_eq!(queue_at(&m.book, Side::Sell, 100), vec![ids[0], ids[1], ids[3], ids[4]]);
    let taker = m.id();
    let events = m.submit(NewOrder::limit(taker, BOB, Side::Buy, 100, 4));
    let makers: Vec<OrderId> = trades(&events).iter().map(|t| t.0).collect();
    assert_eq!(makers, vec![ids[0], ids[1], ids[3], ids[4]]);
}

#[test]
fn no_phantom_best_price_after_the_top_level_empties() {
    let mut m = Market::new();
    let top = m.limit(ALICE, Side::Buy, 100, 1);
    m.limit(ALICE, Side::Buy, 90, 2);
    m.limit(ALICE, Side::Buy, 20, 3);
    m.cancel(top, ALICE);
    assert_eq!(m.book.bbo().bid, Some((90, 2)));
    let taker = m.id();
    m.submit(NewOrder::market(taker, BOB, Side::Sell, 2));
    assert_eq!(m.book.bbo().bid, Some((20, 3)), "skips the 70 empty ticks between");
    let taker = m.id();
    m.submit(NewOrder::market(taker, BOB, Side::Sell, 3));
    assert_eq!(m.book.bbo().bid, None);
    assert_eq!(m.book.depth(10), Depth::default());
}

#[test]
fn stale_or_unknown_cancel_and_replace_are_rejected() {
    let mut m = Market::new();
    let id = m.limit(ALICE, Side::Sell, 100, 1);
    assert_eq!(rejection(&m.cancel(999, ALICE)), Some(RejectReason::UnknownOrder));
    assert_eq!(rejection(&m.cancel(id, BOB)), Some(RejectReason::UnknownOrder), "another account's order");
    assert_eq!(rejection(&m.replace(id, BOB, Some(99), None)), Some(RejectReason::UnknownOrder));
    m.cancel(id, ALICE);
    assert_eq!(rejection(&m.cancel(id, ALICE)), Some(RejectReason::UnknownOrder), "stale: already cancelled");
    assert_eq!(rejection(&m.replace(id, ALICE, None, Some(1))), Some(RejectReason::UnknownOrder));
    let filled = m.limit(ALICE, Side::Sell, 100, 1);
    let taker = m.id();
    m.submit(NewOrder::market(taker, BOB, Side::Buy, 1));
    assert_eq!(rejection(&m.cancel(filled, ALICE)), Some(RejectReason::UnknownOrder), "stale: filled");
}

#[test]
fn duplicate_order_ids_are_rejected() {
    let mut m = Market::new();
    let id = m.limit(ALICE, Side::Sell, 100, 1);
    let events = m.submit(NewOrder::limit(id, BOB, Side::Buy, 90, 1));
    assert_eq!(rejection(&events), Some(RejectReason::DuplicateOrderId));
    let events = m.submit(NewOrder::limit(id - 1, BOB, Side::Buy, 90, 1));
    assert_eq!(rejection(&events), Some(RejectReason::DuplicateOrderId), "ids only go up");
    assert_eq!(m.book.order_count(), 1);
}

#[test]
fn halted_book_rejects_new_and_replace_but_allows_cancel() {
    let mut m = Market::new();
    let id = m.limit(ALICE, Side::Sell, 100, 1);
    let events = m.send(Command::Halt);
    assert!(matches!(events[..], [Event { kind: EventKind::Status { status: BookStatus::Halted }, .. }]));
    assert!(m.book.is_halted());
    let new = m.id();
    assert_eq!(rejection(&m.submit(NewOrder::limit(new, BOB, Side::Buy, 100, 1))), Some(RejectReason::BookHalted));
    assert_eq!(rejection(&m.replace(id, ALICE, Some(101), None)), Some(RejectReason::BookHalted));
    assert_eq!(cancels(&m.cancel(id, ALICE)), vec![(id, 1, CancelReason::User)]);
    m.send(Command::Resume);
    m.limit(BOB, Side::Buy, 100, 1);
}

#[test]
fn reset_cancels_every_resting_order_and_zeroes_positions() {
    let mut m = Market::new();
    let bid = m.limit(ALICE, Side::Buy, 99, 5);
    let ask = m.limit(BOB, Side::Sell, 101, 5);
    let taker = m.id();
    m.submit(NewOrder::limit(taker, CAROL, Side::Buy, 101, 2));
    assert_eq!(m.book.exposure(CAROL).position, 2);
    let events = m.send(Command::Reset);
    assert_eq!(cancels(&events), vec![(bid, 5, CancelReason::Reset), (ask, 3, CancelReason::Reset)]);
    assert_eq!(levels(&events), vec![(Side::Buy, 99, 0), (Side::Sell, 101, 0)]);
    assert!(matches!(events.last().unwrap().kind, EventKind::Status { status: BookStatus::Reset }));
    assert_eq!(m.book.order_count(), 0);
    assert_eq!(m.book.exposure(CAROL), Exposure::default());
    assert_eq!(m.book.exposures(), vec![]);
    let old = taker;
    assert_eq!(
        rejection(&m.submit(NewOrder::limit(old, CAROL, Side::Buy, 100, 1))),
        Some(RejectReason::DuplicateOrderId),
        "ids stay consumed across a reset"
    );
}

#[test]
fn position_limit_counts_position_and_same_side_open_orders() {
    let mut m = Market::new();
    let limit = 10;
    let first = m.id();
    m.submit(NewOrder::limit(first, ALICE, Side::Buy, 100, 6).with_max_position(limit));
    let second = m.id();
    let events = m.submit(NewOrder::limit(second, ALICE, Side::Buy, 99, 5).with_max_position(limit));
    assert_eq!(rejection(&events), Some(RejectReason::PositionLimit), "6 open + 5 > 10");
    let third = m.id();
    let events = m.submit(NewOrder::limit(third, ALICE, Side::Sell, 120, 10).with_max_position(limit));
    assert!(matches!(events[0].kind, EventKind::Accepted { .. }), "the sell side has its own room");

    let seller = m.id();
    m.submit(NewOrder::limit(seller, BOB, Side::Sell, 100, 6));
    assert_eq!(m.book.exposure(ALICE), Exposure { position: 6, open_buy: 0, open_sell: 10 });
    let fourth = m.id();
    let events = m.submit(NewOrder::limit(fourth, ALICE, Side::Buy, 99, 5).with_max_position(limit));
    assert_eq!(rejection(&events), Some(RejectReason::PositionLimit), "position 6 + 5 > 10");
    let fifth = m.id();
    let events = m.submit(NewOrder::limit(fifth, ALICE, Side::Buy, 99, 4).with_max_position(limit));
    assert!(matches!(events[0].kind, EventKind::Accepted { .. }));
}

#[test]
fn position_limit_applies_to_replace_increases() {
    let mut m = Market::new();
    let id = m.id();
    m.submit(NewOrder::limit(id, ALICE, Side::Buy, 100, 6).with_max_position(10));
    assert_eq!(rejection(&m.replace(id, ALICE, None, Some(11))), Some(RejectReason::PositionLimit));
    assert!(matches!(m.replace(id, ALICE, None, Some(10))[0].kind, EventKind::Replaced { .. }));
    assert_eq!(m.book.exposure(ALICE).open_buy, 10);
}

#[test]
fn self_trade_prevention_modes() {
    // cancel newest: the incoming remainder goes, the resting order stays.
    let mut m = Market::new();
    let resting = m.limit(ALICE, Side::Sell, 100, 5);
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, ALICE, Side::Buy, 100, 3).with_stp(StpMode::CancelNewest));
    assert!(trades(&events).is_empty());
    assert_eq!(cancels(&events), vec![(id, 3, CancelReason::SelfTrade)]);
    assert_eq!(m.book.order(resting).unwrap().qty, 5);

    // cancel oldest: the resting self order goes and matching continues behind it.
    let mut m = Market::new();
    let own = m.limit(ALICE, Side::Sell, 100, 5);
    let other = m.limit(BOB, Side::Sell, 100, 5);
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, ALICE, Side::Buy, 100, 3).with_stp(StpMode::CancelOldest));
    assert_eq!(cancels(&events), vec![(own, 5, CancelReason::SelfTrade)]);
    assert_eq!(trades(&events), vec![(other, id, 100, 3)]);

    // cancel both.
    let mut m = Market::new();
    let own = m.limit(ALICE, Side::Sell, 100, 5);
    m.limit(BOB, Side::Sell, 100, 5);
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, ALICE, Side::Buy, 100, 3).with_stp(StpMode::CancelBoth));
    assert!(trades(&events).is_empty());
    assert_eq!(cancels(&events), vec![(own, 5, CancelReason::SelfTrade), (id, 3, CancelReason::SelfTrade)]);

    // none: a self-trade happens and nets out.
    let mut m = Market::new();
    let own = m.limit(ALICE, Side::Sell, 100, 5);
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, ALICE, Side::Buy, 100, 3));
    assert_eq!(trades(&events), vec![(own, id, 100, 3)]);
    assert_eq!(m.book.exposure(ALICE).position, 0);
}

#[test]
fn bad_input_is_rejected_with_a_reason_never_a_panic() {
    let mut m = Market::new();
    for (price, qty, reason) in [
        (100, 0, RejectReason::InvalidQuantity),
        (100, -5, RejectReason::InvalidQuantity),
        (100, i64::MAX, RejectReason::InvalidQuantity),
        (100, MAX_QTY + 1, RejectReason::InvalidQuantity),
        (0, 1, RejectReason::InvalidPrice),
        (-1, 1, RejectReason::InvalidPrice),
        (i64::MIN, 1, RejectReason::InvalidPrice),
        (i64::MAX, 1, RejectReason::InvalidPrice),
        (MAX_PRICE + 1, 1, RejectReason::InvalidPrice),
    ] {
        let id = m.id();
        assert_eq!(
            rejection(&m.submit(NewOrder::limit(id, ALICE, Side::Buy, price, qty))),
            Some(reason),
            "{price} {qty}"
        );
    }
    let id = m.limit(ALICE, Side::Buy, MAX_PRICE, MAX_QTY);
    assert_eq!(rejection(&m.replace(id, ALICE, None, Some(0))), Some(RejectReason::InvalidQuantity));
    assert_eq!(rejection(&m.replace(id, ALICE, Some(-3), None)), Some(RejectReason::InvalidPrice));
    assert_eq!(rejection(&m.replace(u64::MAX, ALICE, Some(3), None)), Some(RejectReason::UnknownOrder));
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, ALICE, Side::Buy, 5, 1).with_max_position(-1));
    assert_eq!(rejection(&events), Some(RejectReason::Malformed), "a negative limit is no limit");
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, ALICE, Side::Buy, 5, MAX_QTY).with_max_position(i64::MAX));
    assert!(matches!(events[0].kind, EventKind::Accepted { .. }), "no overflow in the exposure check");
    let events = m.submit(NewOrder::limit(u64::MAX, BOB, Side::Sell, 1, MAX_QTY));
    assert!(matches!(events[0].kind, EventKind::Accepted { .. }));
    assert_eq!(
        rejection(&m.submit(NewOrder::limit(u64::MAX, BOB, Side::Sell, 1, 1))),
        Some(RejectReason::DuplicateOrderId)
    );
}

#[test]
fn deterministic_events_and_hash() {
    let script = |book: &mut OrderBook| {
        let mut out = Vec::new();
        for i in 1..=500u64 {
            let side = if i % 3 == 0 { Side::Sell } else { Side::Buy };
            let price = 100 + (i * 7 % 11) as i64 - 5;
            book.apply(&Command::New(NewOrder::limit(i, i % 4, side, price, (i % 5 + 1) as i64)), &mut out);
            if i % 4 == 0 {
                book.apply(&Command::Cancel { order_id: i - 2, account: (i - 2) % 4 }, &mut out);
            }
        }
        out
    };
    let (mut a, mut b) = (OrderBook::new("X"), OrderBook::new("X"));
    assert_eq!(script(&mut a), script(&mut b));
    assert_eq!(a.state_hash(), b.state_hash());
}

#[test]
fn snapshot_restore_resumes_exactly() {
    let mut m = Market::new();
    for i in 0..50i64 {
        m.limit(
            i as u64 % 3,
            if i % 2 == 0 { Side::Buy } else { Side::Sell },
            if i % 2 == 0 { 90 + i % 7 } else { 100 + i % 5 },
            1 + i % 4,
        );
    }
    let taker = m.id();
    m.submit(NewOrder::market(taker, 7, Side::Buy, 9));
    m.send(Command::Halt);
    let bytes = m.book.snapshot();
    let mut restored = OrderBook::restore(&bytes).expect("valid snapshot");
    assert_eq!(restored.state_hash(), m.book.state_hash());
    assert_eq!(restored.resting_orders(), m.book.resting_orders());
    assert_eq!(restored.exposures(), m.book.exposures());
    assert!(restored.is_halted());
    for command in [
        Command::Resume,
        Command::New(NewOrder::limit(1_000, 7, Side::Sell, 91, 20)),
        Command::Replace { order_id: 1, account: 0, price: Some(80), qty: None },
        Command::Reset,
    ] {
        assert_eq!(restored.apply_collect(&command), m.book.apply_collect(&command));
    }
    assert_eq!(restored.state_hash(), m.book.state_hash());
}

#[test]
fn corrupted_snapshots_are_errors() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Buy, 10, 1);
    let bytes = m.book.snapshot();
    assert_eq!(OrderBook::restore(b"").err(), Some(SnapshotError::NotASnapshot));
    assert_eq!(OrderBook::restore(&bytes[..bytes.len() - 1]).err(), Some(SnapshotError::Checksum));
    let mut flipped = bytes.clone();
    flipped[12] ^= 0x40;
    assert_eq!(OrderBook::restore(&flipped).err(), Some(SnapshotError::Checksum));
    let mut future = bytes.clone();
    future[6] = 99;
    assert_eq!(OrderBook::restore(&future).err(), Some(SnapshotError::UnsupportedVersion(99)));
}

#[test]
fn a_cancel_newest_taker_stopped_by_its_own_order_leaves_no_level_event() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Sell, 101, 2);
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, ALICE, Side::Buy, 105, 1).with_stp(StpMode::CancelNewest));
    assert!(levels(&events).is_empty(), "{events:?}");
    assert_eq!(cancels(&events), vec![(id, 1, CancelReason::SelfTrade)]);
}

#[test]
fn market_orders_report_price_zero_and_the_client_ref_is_echoed() {
    let mut m = Market::new();
    let id = m.id();
    let mut order = NewOrder::market(id, BOB, Side::Buy, 3).with_client_ref(42);
    order.price = i64::MAX;
    let events = m.submit(order);
    assert!(matches!(events[0].kind, EventKind::Accepted { price: 0, client_ref: 42, .. }), "{events:?}");
    assert!(matches!(events[1].kind, EventKind::Cancelled { price: 0, .. }));
    let events = m.submit(NewOrder::limit(id, BOB, Side::Buy, 5, 1).with_client_ref(43));
    assert!(matches!(events[0].kind, EventKind::Rejected { client_ref: 43, .. }));
}

// ----- the price band ----------------------------------------------------------------------------

fn cancel_reason(events: &[Event]) -> Option<(Qty, CancelReason)> {
    cancels(events).first().map(|&(_, qty, reason)| (qty, reason))
}

#[test]
fn a_band_rejects_limit_prices_outside_it_on_both_sides() {
    let mut m = Market::new();
    // 10 % around 1000 ticks: 900 to 1100, inclusive.
    let events = m.send(Command::Band { bps: 1_000, reference: 1_000 });
    assert!(matches!(events[..], [Event { kind: EventKind::Status { status: BookStatus::Band }, .. }]));
    assert_eq!(m.book.band_limits(), Some((900, 1_100)));
    for (side, price) in [(Side::Buy, 1_101), (Side::Sell, 899), (Side::Sell, 5_000)] {
        let id = m.id();
        let events = m.submit(NewOrder::limit(id, ALICE, side, price, 1));
        assert_eq!(rejection(&events), Some(RejectReason::PriceOutOfBand), "{side:?} {price}");
    }
    m.limit(ALICE, Side::Buy, 1_100, 1);
    m.limit(BOB, Side::Sell, 1_101 - 1, 1); // trades at 1100 with Alice's bid
    assert_eq!(m.book.order_count(), 0);
}

#[test]
fn a_market_order_sweeps_to_the_band_edge_and_the_rest_is_cancelled_naming_the_band() {
    let mut m = Market::new();
    m.send(Command::Band { bps: 1_000, reference: 1_000 });
    let near = m.limit(BOB, Side::Sell, 1_050, 2);
    let edge = m.limit(BOB, Side::Sell, 1_100, 2);
    // The band moves with each trade, but a sweep keeps the limits it arrived with.
    let id = m.id();
    let events = m.submit(NewOrder::market(id, ALICE, Side::Buy, 10));
    assert_eq!(trades(&events), vec![(near, id, 1_050, 2), (edge, id, 1_100, 2)]);
    assert_eq!(cancel_reason(&events), Some((6, CancelReason::Remainder)), "nothing left beyond");

    // Liquidity beyond the band: placed under a wider band, which then narrows (to 990..1210
    // about the last trade, 1100).
    m.send(Command::Band { bps: 5_000, reference: 1_000 });
    m.limit(CAROL, Side::Sell, 1_300, 5);
    let inside = m.limit(BOB, Side::Sell, 1_200, 1);
    m.send(Command::Band { bps: 1_000, reference: 1_000 });
    assert_eq!(m.book.band_limits(), Some((990, 1_210)));
    // A FOK market order counts only what the band lets it take.
    let id = m.id();
    let events = m.submit(NewOrder::market(id, ALICE, Side::Buy, 2).with_tif(TimeInForce::Fok));
    assert_eq!(cancel_reason(&events), Some((2, CancelReason::FokUnfillable)));
    let id = m.id();
    let events = m.submit(NewOrder::market(id, ALICE, Side::Buy, 10));
    assert_eq!(trades(&events), vec![(inside, id, 1_200, 1)]);
    assert_eq!(cancel_reason(&events), Some((9, CancelReason::PriceBand)));
    assert_eq!(m.book.bbo().ask, Some((1_300, 5)), "nothing traded beyond the band");
}

#[test]
fn the_band_follows_the_last_trade_replaces_obey_it_and_a_reset_recentres_it() {
    let mut m = Market::new();
    m.send(Command::Band { bps: 500, reference: 2_000 }); // 1900 to 2100
    let bid = m.limit(ALICE, Side::Buy, 1_950, 3);
    m.limit(BOB, Side::Sell, 1_950, 1); // a trade at 1950: now 1853 to 2047 (97.5 rounds down)
    assert_eq!(m.book.band_limits(), Some((1_853, 2_047)));
    assert_eq!(rejection(&m.replace(bid, ALICE, Some(1_852), None)), Some(RejectReason::PriceOutOfBand));
    let events = m.replace(bid, ALICE, Some(1_853), None);
    assert!(matches!(events[0].kind, EventKind::Replaced { price: 1_853, .. }), "{events:?}");

    m.send(Command::Band { bps: 10, reference: 2_000 }); // now 1948 to 1951 around the trade
    assert_eq!(m.book.band_limits(), Some((1_949, 1_951)));
    // Left outside by the band's move, the order may still be reduced where it is.
    let events = m.replace(bid, ALICE, None, Some(1));
    assert!(matches!(events[0].kind, EventKind::Replaced { kept_priority: true, .. }), "{events:?}");

    m.send(Command::Reset);
    assert_eq!(m.book.band_limits(), Some((1_998, 2_002)), "back about the BAND's reference");
    m.send(Command::Band { bps: 0, reference: 0 });
    assert_eq!(m.book.band_limits(), None);
    m.limit(ALICE, Side::Buy, 1, 1);
}

#[test]
fn an_invalid_band_is_rejected_and_changes_nothing() {
    let mut m = Market::new();
    m.send(Command::Band { bps: 100, reference: 1_000 });
    for command in [
        Command::Band { bps: MAX_BAND_BPS + 1, reference: 1_000 },
        Command::Band { bps: 100, reference: 0 },
        Command::Band { bps: 100, reference: MAX_PRICE + 1 },
    ] {
        let events = m.send(command);
        assert!(matches!(
            events[..],
            [Event {
                kind: EventKind::Rejected {
                    order_id: 0,
                    account: 0,
                    command: CommandKind::Band,
                    reason: RejectReason::InvalidBand,
                    ..
                },
                ..
            }]
        ));
    }
    assert_eq!(m.book.band_limits(), Some((990, 1_010)));
}

#[test]
fn a_snapshot_keeps_the_band_and_its_last_trade() {
    let mut m = Market::new();
    m.send(Command::Band { bps: 1_000, reference: 1_000 });
    m.limit(ALICE, Side::Buy, 1_020, 1);
    m.limit(BOB, Side::Sell, 1_020, 1);
    let restored = OrderBook::restore(&m.book.snapshot()).expect("restores");
    assert_eq!(restored.band_limits(), Some((918, 1_122)));
    assert_eq!(restored.state_hash(), m.book.state_hash());
}

// ----- the volatility guard ----------------------------------------------------------------------

fn statuses(events: &[Event]) -> Vec<BookStatus> {
    events
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::Status { status } => Some(status),
            _ => None,
        })
        .collect()
}

fn tick(m: &mut Market, now_ms: u64) -> Vec<Event> {
    let mut out = Vec::new();
    m.book.advance_clock(now_ms, &mut out);
    out
}

#[test]
fn a_move_beyond_the_guard_pauses_the_book_after_the_command_that_made_it() {
    let mut m = Market::new();
    // 5 % within a minute pauses for 30 s.
    m.send(Command::Volatility { bps: 500, window_ms: 60_000, pause_ms: 30_000 });
    tick(&mut m, 1_000);
    m.limit(ALICE, Side::Sell, 1_000, 1);
    m.limit(BOB, Side::Buy, 1_000, 1); // trades at 1000
    tick(&mut m, 10_000);
    m.limit(ALICE, Side::Sell, 1_040, 1);
    m.limit(ALICE, Side::Sell, 1_060, 5);
    let id = m.id();
    // A buy sweeping 1040 (4 %) then 1060 (6 %): it completes, whole, and then the book pauses.
    let events = m.submit(NewOrder::limit(id, BOB, Side::Buy, 1_060, 3));
    assert_eq!(trades(&events), vec![(3, id, 1_040, 1), (4, id, 1_060, 2)]);
    assert_eq!(statuses(&events), vec![BookStatus::Paused]);
    assert!(matches!(events.last().unwrap().kind, EventKind::Status { status: BookStatus::Paused }));
    assert!(m.book.is_paused());
    assert_eq!(m.book.volatility(), (500, 60_000, 30_000, 40_000));

    // New orders and replaces are refused with a reason; cancels work.
    let id = m.id();
    assert_eq!(
        rejection(&m.submit(NewOrder::limit(id, CAROL, Side::Buy, 1_000, 1))),
        Some(RejectReason::VolatilityPause)
    );
    assert_eq!(rejection(&m.replace(4, ALICE, Some(1_070), None)), Some(RejectReason::VolatilityPause));
    assert!(matches!(m.cancel(4, ALICE)[0].kind, EventKind::Cancelled { reason: CancelReason::User, .. }));

    // Time ends the pause, once, with an event of its own.
    assert!(tick(&mut m, 39_999).is_empty());
    let ended = tick(&mut m, 40_000);
    assert_eq!(statuses(&ended), vec![BookStatus::PauseEnded]);
    assert!(tick(&mut m, 50_000).is_empty());
    assert!(!m.book.is_paused());
    // The window starts afresh at the pause: a trade near the new price does not pause again.
    m.limit(ALICE, Side::Sell, 1_070, 1);
    let id = m.id();
    let events = m.submit(NewOrder::limit(id, BOB, Side::Buy, 1_070, 1));
    assert_eq!(trades(&events).len(), 1);
    assert!(statuses(&events).is_empty());
}

#[test]
fn trades_older_than_the_window_do_not_count_and_a_fall_pauses_too() {
    let mut m = Market::new();
    m.send(Command::Volatility { bps: 500, window_ms: 60_000, pause_ms: 1_000 });
    m.limit(ALICE, Side::Sell, 1_000, 1);
    m.limit(BOB, Side::Buy, 1_000, 1);
    tick(&mut m, 60_001); // the trade at 1000 has left the window
    m.limit(ALICE, Side::Sell, 1_100, 1);
    let events = {
        let id = m.id();
        m.submit(NewOrder::limit(id, BOB, Side::Buy, 1_100, 1))
    };
    assert!(statuses(&events).is_empty(), "10 % from a trade outside the window: no pause");
    m.limit(ALICE, Side::Buy, 1_040, 1);
    let id = m.id();
    let events = m.submit(NewOrder::market(id, BOB, Side::Sell, 1)); // 1100 -> 1040: -5.45 %
    assert_eq!(statuses(&events), vec![BookStatus::Paused]);
}

#[test]
fn the_guard_off_never_pauses_and_invalid_settings_are_rejected() {
    let mut m = Market::new();
    m.limit(ALICE, Side::Sell, 1_000, 1);
    m.limit(BOB, Side::Buy, 1_000, 1);
    m.limit(ALICE, Side::Sell, 2_000, 1);
    let id = m.id();
    assert!(statuses(&m.submit(NewOrder::limit(id, BOB, Side::Buy, 2_000, 1))).is_empty());
    for command in [
        Command::Volatility { bps: MAX_VOLATILITY_BPS + 1, window_ms: 1_000, pause_ms: 1_000 },
        Command::Volatility { bps: 100, window_ms: 0, pause_ms: 1_000 },
        Command::Volatility { bps: 100, window_ms: 1_000, pause_ms: MAX_VOLATILITY_MS + 1 },
        Command::Fees { maker_bps: -5, taker_bps: 4 },
        Command::Fees { maker_bps: 0, taker_bps: -1 },
        Command::Fees { maker_bps: MAX_FEE_BPS + 1, taker_bps: 0 },
    ] {
        let reason = rejection(&m.send(command));
        assert!(matches!(reason, Some(RejectReason::InvalidVolatility | RejectReason::InvalidFees)), "{command:?}");
    }
    assert_eq!(m.book.volatility(), (0, 0, 0, 0));
    assert_eq!(m.book.fees(), (0, 0));
}

#[test]
fn a_snapshot_keeps_the_pause_the_window_and_the_fees() {
    let mut m = Market::new();
    m.send(Command::Volatility { bps: 100, window_ms: 60_000, pause_ms: 5_000 });
    m.send(Command::Fees { maker_bps: -1, taker_bps: 4 });
    tick(&mut m, 7);
    m.limit(ALICE, Side::Sell, 1_000, 1);
    m.limit(BOB, Side::Buy, 1_000, 1);
    m.limit(ALICE, Side::Sell, 1_020, 1);
    let id = m.id();
    assert_eq!(statuses(&m.submit(NewOrder::limit(id, BOB, Side::Buy, 1_020, 1))), vec![BookStatus::Paused]);
    let mut restored = OrderBook::restore(&m.book.snapshot()).expect("restores");
    assert_eq!(restored.state_hash(), m.book.state_hash());
    assert_eq!((restored.volatility(), restored.fees(), restored.now_ms()), ((100, 60_000, 5_000, 5_007), (-1, 4), 7));
    let mut out = Vec::new();
    restored.advance_clock(5_007, &mut out);
    assert_eq!(statuses(&out), vec![BookStatus::PauseEnded]);
}

// ----- fees ----------------------------------------------------------------------------------------

#[test]
fn every_trade_carries_the_fee_rates_in_force() {
    let mut m = Market::new();
    assert!(matches!(
        m.send(Command::Fees { maker_bps: -2, taker_bps: 5 })[..],
        [Event { kind: EventKind::Status { status: BookStatus::Fees }, .. }]
    ));
    m.limit(ALICE, Side::Sell, 1_000, 2);
    let id = m.id();
    let events = m.submit(NewOrder::market(id, BOB, Side::Buy, 1));
    assert!(events.iter().any(|e| matches!(e.kind, EventKind::Trade { maker_fee_bps: -2, taker_fee_bps: 5, .. })));
    m.send(Command::Fees { maker_bps: 0, taker_bps: 0 });
    let id = m.id();
    let events = m.submit(NewOrder::market(id, BOB, Side::Buy, 1));
    assert!(events.iter().any(|e| matches!(e.kind, EventKind::Trade { maker_fee_bps: 0, taker_fee_bps: 0, .. })));
}

/// The outcome of a journal entry, for comparing the typed API with the worker's path.
fn via_journal(book: &mut OrderBook, fields: &[(&str, &str)]) -> Vec<Event> {
    let pairs: Vec<(&[u8], &[u8])> = fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    let mut out = Vec::new();
    engine_rs::journal::apply_entry(book, None, &pairs, &mut out);
    out
}

#[test]
fn an_empty_replace_is_malformed_through_the_typed_api_as_through_the_journal() {
    let mut typed = Market::new();
    let id = typed.limit(ALICE, Side::Buy, 100, 5);
    let mut journal = Market::new();
    journal.limit(ALICE, Side::Buy, 100, 5);

    let events = typed.replace(id, ALICE, None, None);
    let expected = via_journal(&mut journal.book, &[("t", "replace"), ("id", "1"), ("acct", "1")]);
    assert_eq!(events, expected);
    assert!(
        matches!(
            events[..],
            [Event {
                seq: 3,
                kind: EventKind::Rejected {
                    order_id: 1,
                    account: ALICE,
                    command: CommandKind::Replace,
                    reason: RejectReason::Malformed,
                    client_ref: 0
                }
            }]
        ),
        "{events:?}"
    );
    assert_eq!(typed.book.state_hash(), journal.book.state_hash());
    assert_eq!(typed.book.order(id).map(|o| (o.price, o.qty)), Some((100, 5)));
}

#[test]
fn a_negative_position_limit_is_malformed_and_consumes_the_id_in_both_paths() {
    let mut typed = Market::new();
    let id = typed.id();
    let order = NewOrder::limit(id, ALICE, Side::Sell, 100, 1).with_max_position(-1).with_client_ref(9);
    let events = typed.submit(order);
    let mut journal = OrderBook::new("TEST");
    let expected = via_journal(
        &mut journal,
        &[
            ("t", "new"),
            ("id", "1"),
            ("acct", "1"),
            ("side", "sell"),
            ("px", "100"),
            ("qty", "1"),
            ("maxpos", "-1"),
            ("ref", "9"),
        ],
    );
    assert_eq!(events, expected);
    assert!(
        matches!(
            events[..],
            [Event { kind: EventKind::Rejected { reason: RejectReason::Malformed, client_ref: 9, .. }, .. }]
        ),
        "{events:?}"
    );
    assert_eq!(typed.book.order_count(), 0);
    // The id is consumed like any NEW's.
    let again = typed.submit(NewOrder::limit(id, ALICE, Side::Sell, 100, 1));
    assert!(matches!(again[0].kind, EventKind::Rejected { reason: RejectReason::DuplicateOrderId, .. }));
    // Zero is a limit (only reducing orders), not malformed.
    let zero = typed.id();
    let events = typed.submit(NewOrder::limit(zero, ALICE, Side::Sell, 100, 1).with_max_position(0));
    assert!(matches!(events[0].kind, EventKind::Rejected { reason: RejectReason::PositionLimit, .. }), "{events:?}");
}

#[test]
fn the_state_hash_tells_no_position_limit_from_every_limit() {
    let hash_with = |max_position: Option<Qty>| {
        let mut m = Market::new();
        let mut order = NewOrder::limit(1, ALICE, Side::Buy, 100, 5);
        order.max_position = max_position;
        m.submit(order);
        m.book.state_hash()
    };
    let none = hash_with(None);
    for limit in [0, 5, 1_000, MAX_QTY, Qty::MAX] {
        assert_ne!(hash_with(Some(limit)), none, "limit {limit}");
    }
    assert_ne!(hash_with(Some(5)), hash_with(Some(6)));
}
