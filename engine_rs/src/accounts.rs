//! Per-account exposure inside one book: net position and open quantity per side.
//!
//! This is what lets the engine enforce position limits atomically: the check and the state it
//! checks live in the same single-threaded book, so no two orders can both squeeze under a limit.

use crate::types::{AccountId, Qty, Side};
use rustc_hash::FxHashMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Net position in lots: positive long, negative short.
    pub position: Qty,
    /// Quantity of the account's resting buy orders.
    pub open_buy: Qty,
    /// Quantity of the account's resting sell orders.
    pub open_sell: Qty,
}

impl Exposure {
    /// Whether an order of `qty` on `side` would take the worst-case exposure — position plus
    /// same-side open quantity plus the order — beyond `max_position`.
    #[inline]
    pub fn exceeds(&self, side: Side, qty: Qty, max_position: Qty) -> bool {
        let worst = match side {
            Side::Buy => self.position.saturating_add(self.open_buy),
            Side::Sell => self.open_sell.saturating_sub(self.position),
        };
        worst.saturating_add(qty) > max_position
    }

    /// The same exposure with `qty` of open quantity on `side` taken away.
    pub fn without_open(mut self, side: Side, qty: Qty) -> Self {
        match side {
            Side::Buy => self.open_buy -= qty,
            Side::Sell => self.open_sell -= qty,
        }
        self
    }

    pub fn is_zero(&self) -> bool {
        *self == Exposure::default()
    }

    #[inline]
    fn open_mut(&mut self, side: Side) -> &mut Qty {
        match side {
            Side::Buy => &mut self.open_buy,
            Side::Sell => &mut self.open_sell,
        }
    }
}

/// Account ids below this find their slot in a plain array (`direct`, up to 256 kB a book);
/// larger ones through the hash map. Accounts are database ids, small in practice.
const DIRECT_ACCOUNTS: AccountId = 1 << 16;

/// Accounts in a slab, so resting orders can point at theirs and fills never hash.
#[derive(Default)]
pub(crate) struct Accounts {
    /// Slot + 1 (0: none) of the account ids below `DIRECT_ACCOUNTS`, grown to the largest seen:
    /// a NEW's account lookup without hashing (callgrind: the hash lookup was ~10 % of a NEW's
    /// instructions in the field's workloads; docs/benchmarks.md).
    direct: Vec<u32>,
    /// Slots of the larger account ids.
    slot_of: FxHashMap<AccountId, u32>,
    ids: Vec<AccountId>,
    exposures: Vec<Exposure>,
}

impl Accounts {
    /// The account's slot, created on first sight.
    #[inline]
    pub fn slot(&mut self, account: AccountId) -> u32 {
        if account < DIRECT_ACCOUNTS {
            if let Some(&slot) = self.direct.get(account as usize).filter(|&&slot| slot != 0) {
                return slot - 1;
            }
            let slot = self.push(account);
            if self.direct.len() <= account as usize {
                self.direct.resize(account as usize + 1, 0);
            }
            self.direct[account as usize] = slot + 1;
            return slot;
        }
        // A plain lookup first: the entry API costs more, and the account is almost always known.
        if let Some(&slot) = self.slot_of.get(&account) {
            return slot;
        }
        let slot = self.push(account);
        self.slot_of.insert(account, slot);
        slot
    }

    fn push(&mut self, account: AccountId) -> u32 {
        self.ids.push(account);
        self.exposures.push(Exposure::default());
        (self.exposures.len() - 1) as u32
    }

    /// The slot of a known account, without creating one.
    #[inline]
    fn find(&self, account: AccountId) -> Option<u32> {
        if account < DIRECT_ACCOUNTS {
            self.direct.get(account as usize).copied().filter(|&slot| slot != 0).map(|slot| slot - 1)
        } else {
            self.slot_of.get(&account).copied()
        }
    }

    #[inline]
    pub fn get(&self, slot: u32) -> &Exposure {
        &self.exposures[slot as usize]
    }

    pub fn lookup(&self, account: AccountId) -> Exposure {
        self.find(account).map(|slot| self.exposures[slot as usize]).unwrap_or_default()
    }

    /// An order of `qty` starts resting.
    #[inline]
    pub fn hold(&mut self, slot: u32, side: Side, qty: Qty) {
        *self.exposures[slot as usize].open_mut(side) += qty;
    }

    /// `qty` of a resting order leaves the book without trading.
    #[inline]
    pub fn release(&mut self, slot: u32, side: Side, qty: Qty) {
        *self.exposures[slot as usize].open_mut(side) -= qty;
    }

    /// A resting order traded `qty`: its open quantity becomes position.
    #[inline]
    pub fn fill_maker(&mut self, slot: u32, side: Side, qty: Qty) {
        self.release(slot, side, qty);
        self.fill_taker(slot, side, qty);
    }

    /// An incoming order traded `qty`.
    #[inline]
    pub fn fill_taker(&mut self, slot: u32, side: Side, qty: Qty) {
        let exposure = &mut self.exposures[slot as usize];
        // Saturating: a position cannot reach ±2^63 lots under any real limit, and wrapping
        // around would be worse than sticking at the edge.
        exposure.position = match side {
            Side::Buy => exposure.position.saturating_add(qty),
            Side::Sell => exposure.position.saturating_sub(qty),
        };
    }

    /// Accounts with anything non-zero, by account id.
    pub fn non_zero(&self) -> Vec<(AccountId, Exposure)> {
        let mut listed: Vec<(AccountId, Exposure)> = self
            .ids
            .iter()
            .zip(&self.exposures)
            .filter(|(_, exposure)| !exposure.is_zero())
            .map(|(&id, &exposure)| (id, exposure))
            .collect();
        listed.sort_unstable_by_key(|(id, _)| *id);
        listed
    }

    /// Sets a restored account's position (open quantities come from its restored orders).
    pub fn set_position(&mut self, account: AccountId, position: Qty) {
        let slot = self.slot(account);
        self.exposures[slot as usize].position = position;
    }

    pub fn clear(&mut self) {
        self.direct.clear();
        self.slot_of.clear();
        self.ids.clear();
        self.exposures.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_account_ids_keep_their_slots() {
        let mut accounts = Accounts::default();
        let ids = [5, 0, DIRECT_ACCOUNTS - 1, DIRECT_ACCOUNTS, 70_000, AccountId::MAX];
        let slots: Vec<u32> = ids.iter().map(|&id| accounts.slot(id)).collect();
        assert_eq!(slots, vec![0, 1, 2, 3, 4, 5]);
        for (&id, &slot) in ids.iter().zip(&slots) {
            assert_eq!(accounts.slot(id), slot, "account {id}");
            accounts.hold(slot, Side::Buy, slot as Qty + 1);
        }
        for (&id, &slot) in ids.iter().zip(&slots) {
            assert_eq!(accounts.lookup(id).open_buy, slot as Qty + 1, "account {id}");
        }
        assert_eq!(accounts.lookup(6), Exposure::default());
        assert_eq!(accounts.lookup(70_001), Exposure::default());
        assert_eq!(accounts.non_zero().len(), ids.len());
        accounts.clear();
        assert_eq!(accounts.lookup(5), Exposure::default());
        assert_eq!(accounts.slot(AccountId::MAX), 0);
        assert_eq!(accounts.slot(5), 1);
    }
}
