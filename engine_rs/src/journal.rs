//! Applying journal entries to a book: the one definition of "process this entry", shared by the
//! Redis worker and by in-process replays (Python bindings, tests), so both reach the same state.

use crate::book::OrderBook;
use crate::codec::decode_command;
use crate::types::{CommandKind, Event};

/// What a journal entry did besides its events.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EntryOutcome {
    /// Where the producer asked for the immediate outcome to be pushed.
    pub reply_to: Option<Vec<u8>>,
    /// Why the entry was malformed, if it was (the book emitted a MALFORMED rejection).
    pub malformed: Option<String>,
}

/// The time of a journal entry: the milliseconds part of its stream id (`1700000000000-3`), which
/// Redis keeps increasing along the stream. None for an id of another form.
pub fn entry_ms(entry_id: &str) -> Option<u64> {
    entry_id.split_once('-').map_or(entry_id, |(ms, _)| ms).parse().ok()
}

/// Decodes one entry's field/value pairs and applies it, appending its events to `out`. The
/// book's clock first moves to the entry's time (`entry_id`'s milliseconds; None leaves it), which
/// may end a volatility pause. A malformed entry still yields exactly one event — a `Rejected` with
/// reason `MALFORMED` — so the sequence stays gap-free and every entry has an outcome.
pub fn apply_entry(
    book: &mut OrderBook,
    entry_id: Option<&str>,
    fields: &[(&[u8], &[u8])],
    out: &mut Vec<Event>,
) -> EntryOutcome {
    if let Some(ms) = entry_id.and_then(entry_ms) {
        book.advance_clock(ms, out);
    }
    match decode_command(fields) {
        Ok(decoded) => {
            book.apply(&decoded.command, out);
            EntryOutcome { reply_to: decoded.reply_to, malformed: None }
        }
        Err(error) => {
            let command = error.command.unwrap_or(CommandKind::New);
            book.reject_malformed(error.order_id, error.account, command, error.client_ref, out);
            EntryOutcome { reply_to: error.reply_to, malformed: Some(error.detail) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{EventKind, RejectReason};

    #[test]
    fn a_malformed_entry_yields_one_rejection_and_later_entries_still_apply() {
        let mut book = OrderBook::new("X");
        let mut out = Vec::new();
        let garbage: Vec<(&[u8], &[u8])> = vec![(b"t", b"new"), (b"id", b"4"), (b"acct", b"2"), (b"qty", b"\xff")];
        let outcome = apply_entry(&mut book, None, &garbage, &mut out);
        assert!(outcome.malformed.is_some());
        assert!(matches!(
            out[..],
            [Event {
                seq: 1,
                kind: EventKind::Rejected { order_id: 4, account: 2, reason: RejectReason::Malformed, .. }
            }]
        ));
        let valid: Vec<(&[u8], &[u8])> =
            vec![(b"t", b"new"), (b"id", b"5"), (b"acct", b"2"), (b"side", b"buy"), (b"px", b"9"), (b"qty", b"1")];
        assert_eq!(apply_entry(&mut book, None, &valid, &mut out), EntryOutcome::default());
        assert_eq!(book.order_count(), 1);
    }

    #[test]
    fn a_malformed_new_consumes_its_order_id() {
        let mut book = OrderBook::new("X");
        let mut out = Vec::new();
        let garbage: Vec<(&[u8], &[u8])> = vec![(b"t", b"new"), (b"id", b"4"), (b"acct", b"2"), (b"side", b"up")];
        apply_entry(&mut book, None, &garbage, &mut out);
        out.clear();
        let reused: Vec<(&[u8], &[u8])> =
            vec![(b"t", b"new"), (b"id", b"4"), (b"acct", b"2"), (b"side", b"buy"), (b"px", b"9"), (b"qty", b"1")];
        apply_entry(&mut book, None, &reused, &mut out);
        assert!(
            matches!(out[..], [Event { kind: EventKind::Rejected { reason: RejectReason::DuplicateOrderId, .. }, .. }]),
            "{out:?}"
        );
    }
}
