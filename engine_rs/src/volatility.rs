//! The volatility guard: the trades of a sliding time window, and whether the latest moved the
//! price too far from any of them.
//!
//! The window keeps two monotonic queues — candidates for its lowest and highest price — so each
//! trade costs O(1) amortised and the window's extremes are at the queues' fronts, however many
//! trades it holds. Time is the journal's (milliseconds): the same entries give the same pauses on
//! every replay.

use crate::types::Price;
use std::collections::VecDeque;

/// The window's two queues, candidates for its lowest and its highest trade, each `(ms, price)`
/// oldest first — as a snapshot keeps them.
pub type VolatilityWindow = (Vec<(u64, Price)>, Vec<(u64, Price)>);

#[derive(Clone, Debug, Default)]
pub(crate) struct VolatilityGuard {
    /// The largest allowed move in basis points; 0: the guard is off.
    pub bps: u32,
    pub window_ms: u64,
    pub pause_ms: u64,
    /// When the current pause ends (journal milliseconds); 0: not paused.
    pub paused_until: u64,
    /// `(time, price)` with increasing prices: the front is the window's lowest.
    lows: VecDeque<(u64, Price)>,
    /// `(time, price)` with decreasing prices: the front is the window's highest.
    highs: VecDeque<(u64, Price)>,
    /// A trade of the command being applied moved the price beyond the limit.
    pub tripped: bool,
}

impl VolatilityGuard {
    /// New settings, judged from a fresh window (trades a shorter window has already let go
    /// cannot be brought back when it widens, so none are kept). Off (`bps` 0) keeps no window or
    /// pause length. A pause under way runs its course.
    pub fn set(&mut self, bps: u32, window_ms: u64, pause_ms: u64) {
        let on = bps != 0;
        self.bps = bps;
        self.window_ms = if on { window_ms } else { 0 };
        self.pause_ms = if on { pause_ms } else { 0 };
        self.forget();
    }

    /// Notes a trade at `price` at `now`; trips the guard if the price is more than `bps` from the
    /// window's lowest or highest trade.
    pub fn note(&mut self, now: u64, price: Price) {
        let oldest = now.saturating_sub(self.window_ms);
        while self.lows.front().is_some_and(|&(at, _)| at < oldest) {
            self.lows.pop_front();
        }
        while self.highs.front().is_some_and(|&(at, _)| at < oldest) {
            self.highs.pop_front();
        }
        while self.lows.back().is_some_and(|&(_, p)| p >= price) {
            self.lows.pop_back();
        }
        while self.highs.back().is_some_and(|&(_, p)| p <= price) {
            self.highs.pop_back();
        }
        self.lows.push_back((now, price));
        self.highs.push_back((now, price));
        let (low, high) = (self.lows[0].1, self.highs[0].1);
        // In i128: 10_000 * a price of up to 2^53 does not fit an i64.
        let (bps, price) = (i128::from(self.bps), i128::from(price));
        if price * 10_000 > i128::from(low) * (10_000 + bps) || price * 10_000 < i128::from(high) * (10_000 - bps) {
            self.tripped = true;
        }
    }

    /// Starts a pause at `now`: the window starts afresh from the price the pause is about.
    pub fn begin_pause(&mut self, now: u64) {
        self.paused_until = now.saturating_add(self.pause_ms).max(1);
        self.tripped = false;
        self.forget();
    }

    /// Forgets the window's trades (a new session: after a pause, a RESET, or the guard's end).
    pub fn forget(&mut self) {
        self.lows.clear();
        self.highs.clear();
    }

    /// The window's two queues, each oldest first (what a snapshot keeps, as they are: a trade's
    /// place in them depends on the order trades came in, which their times do not always tell).
    pub fn window(&self) -> VolatilityWindow {
        (self.lows.iter().copied().collect(), self.highs.iter().copied().collect())
    }

    /// Puts back [`Self::window`]'s queues.
    pub fn restore_window(&mut self, lows: &[(u64, Price)], highs: &[(u64, Price)]) {
        self.lows = lows.iter().copied().collect();
        self.highs = highs.iter().copied().collect();
    }
}
