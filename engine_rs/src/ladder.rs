//! The set of occupied price levels on one side of a book, ordered best first.
//!
//! Keys are "priority keys": smaller is better. Asks use the price, bids its negation, so one
//! structure serves both sides. Each occupied key maps to a level index.
//!
//! Layout: a two-level radix over the key. The low 6 bits pick a slot in a 64-wide chunk with an
//! occupancy bitmap; the chunks themselves are found through a hash map (O(1) lookup for any i64,
//! however sparse the prices) and ordered in a B-tree that is touched only when a whole chunk
//! fills or empties. So insert, remove and lookup are O(1), and finding the next-best level after
//! the top empties is a bit scan — a B-tree step only when it crosses 64 ticks of empty book.
//! A dense array would be simpler but would need a bounded price range; a plain B-tree per level
//! costs a tree walk on every new price, which is most of the budget at 10M messages/s.
//!
//! The chunks near where the side first traded are found without hashing: a window of
//! `WINDOW_CHUNKS` chunk slots (16 kB, 262,144 ticks) placed about the first key inserted after
//! the ladder was created or cleared. Keys outside it go through the hash map as before, so a far
//! price costs what it always did and memory stays bounded (callgrind: the hash lookups were
//! about a tenth of the instructions of a message in the field's workloads; docs/benchmarks.md).

use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

const CHUNK_BITS: u32 = 6;
const CHUNK_WIDTH: i64 = 1 << CHUNK_BITS;
const SLOT_MASK: i64 = CHUNK_WIDTH - 1;
/// Chunks the window covers (a power of two).
const WINDOW_CHUNKS: usize = 4_096;

struct Chunk {
    occupied: u64,
    levels: [u32; CHUNK_WIDTH as usize],
}

#[derive(Default)]
pub struct Ladder {
    /// Chunk indices + 1 (0: none) of the chunk keys `window_base..window_base + WINDOW_CHUNKS`;
    /// empty until the first insert places it.
    window: Vec<u32>,
    window_base: i64,
    /// Chunks outside the window.
    chunk_of: FxHashMap<i64, u32>,
    chunks: Vec<Chunk>,
    free_chunks: Vec<u32>,
    ordered_chunks: BTreeSet<i64>,
    best: Option<i64>,
    len: usize,
}

#[inline]
fn split(key: i64) -> (i64, usize) {
    (key >> CHUNK_BITS, (key & SLOT_MASK) as usize)
}

#[inline]
fn join(chunk_key: i64, slot: u32) -> i64 {
    (chunk_key << CHUNK_BITS) | slot as i64
}

impl Ladder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The best (smallest) key, if any level is occupied.
    #[inline]
    pub fn best(&self) -> Option<i64> {
        self.best
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The window's slot of a chunk key, if the window covers it.
    #[inline]
    fn window_slot(&self, chunk_key: i64) -> Option<usize> {
        let offset = chunk_key.wrapping_sub(self.window_base) as u64;
        (offset < self.window.len() as u64).then_some(offset as usize)
    }

    /// The chunk index of a chunk key, if that chunk exists.
    #[inline]
    fn chunk_index(&self, chunk_key: i64) -> Option<u32> {
        match self.window_slot(chunk_key) {
            Some(slot) => self.window[slot].checked_sub(1),
            None => self.chunk_of.get(&chunk_key).copied(),
        }
    }

    #[inline]
    pub fn get(&self, key: i64) -> Option<u32> {
        let (chunk_key, slot) = split(key);
        let chunk = &self.chunks[self.chunk_index(chunk_key)? as usize];
        if chunk.occupied & (1u64 << slot) != 0 {
            Some(chunk.levels[slot])
        } else {
            None
        }
    }

    /// Marks `key` occupied by `level`. The key must not be occupied already.
    pub fn insert(&mut self, key: i64, level: u32) {
        let (chunk_key, slot) = split(key);
        if self.window.is_empty() {
            // Centred on the first key: prices wander both ways from where trading starts.
            self.window = vec![0; WINDOW_CHUNKS];
            self.window_base = chunk_key.saturating_sub(WINDOW_CHUNKS as i64 / 2);
        }
        let index = match self.chunk_index(chunk_key) {
            Some(index) => index,
            None => {
                let index = match self.free_chunks.pop() {
                    Some(index) => index,
                    None => {
                        self.chunks.push(Chunk { occupied: 0, levels: [0; CHUNK_WIDTH as usize] });
                        (self.chunks.len() - 1) as u32
                    }
                };
                match self.window_slot(chunk_key) {
                    Some(at) => self.window[at] = index + 1,
                    None => {
                        self.chunk_of.insert(chunk_key, index);
                    }
                }
                self.ordered_chunks.insert(chunk_key);
                index
            }
        };
        let chunk = &mut self.chunks[index as usize];
        debug_assert!(chunk.occupied & (1u64 << slot) == 0, "key already occupied");
        chunk.occupied |= 1u64 << slot;
        chunk.levels[slot] = level;
        self.len += 1;
        if self.best.is_none_or(|best| key < best) {
            self.best = Some(key);
        }
    }

    /// Frees `key`, which must be occupied.
    pub fn remove(&mut self, key: i64) {
        let (chunk_key, slot) = split(key);
        let index = self.chunk_index(chunk_key).expect("removing a key of an absent chunk");
        let chunk = &mut self.chunks[index as usize];
        debug_assert!(chunk.occupied & (1u64 << slot) != 0, "removing a free key");
        chunk.occupied &= !(1u64 << slot);
        self.len -= 1;
        if chunk.occupied == 0 {
            match self.window_slot(chunk_key) {
                Some(at) => self.window[at] = 0,
                None => {
                    self.chunk_of.remove(&chunk_key);
                }
            }
            self.ordered_chunks.remove(&chunk_key);
            self.free_chunks.push(index);
        }
        if self.best == Some(key) {
            self.best = self.next_after(key);
        }
    }

    /// The smallest occupied key strictly greater than `key`.
    pub fn next_after(&self, key: i64) -> Option<i64> {
        let (chunk_key, slot) = split(key);
        if let Some(index) = self.chunk_index(chunk_key) {
            let above = if slot == 63 { 0 } else { self.chunks[index as usize].occupied & (!0u64 << (slot + 1)) };
            if above != 0 {
                return Some(join(chunk_key, above.trailing_zeros()));
            }
        }
        let next_chunk = *self.ordered_chunks.range(chunk_key.checked_add(1)?..).next()?;
        let index = self.chunk_index(next_chunk).expect("ordered chunks exist");
        Some(join(next_chunk, self.chunks[index as usize].occupied.trailing_zeros()))
    }

    /// Occupied `(key, level)` pairs, best first.
    pub fn iter(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        let mut next = self.best;
        std::iter::from_fn(move || {
            let key = next?;
            next = self.next_after(key);
            Some((key, self.get(key).expect("ladder keys are occupied")))
        })
    }

    pub fn clear(&mut self) {
        // The window is placed again by the next insert (a RESET may reopen at other prices).
        self.window = Vec::new();
        self.chunk_of.clear();
        self.chunks.clear();
        self.free_chunks.clear();
        self.ordered_chunks.clear();
        self.best = None;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn empty_ladder_has_no_best() {
        let ladder = Ladder::new();
        assert_eq!(ladder.best(), None);
        assert_eq!(ladder.next_after(0), None);
        assert!(ladder.is_empty());
    }

    #[test]
    fn best_moves_to_next_level_across_chunks_and_signs() {
        let mut ladder = Ladder::new();
        for (level, key) in [-1_000i64, -65, -1, 0, 63, 64, 10_000].into_iter().enumerate() {
            ladder.insert(key, level as u32);
        }
        assert_eq!(ladder.best(), Some(-1_000));
        let keys: Vec<i64> = ladder.iter().map(|(key, _)| key).collect();
        assert_eq!(keys, vec![-1_000, -65, -1, 0, 63, 64, 10_000]);
        for key in [-1_000, -65, -1, 0, 63, 64] {
            ladder.remove(key);
            assert_eq!(ladder.best(), ladder.iter().next().map(|(k, _)| k));
        }
        assert_eq!(ladder.best(), Some(10_000));
        ladder.remove(10_000);
        assert_eq!(ladder.best(), None);
    }

    #[test]
    fn extreme_keys_do_not_overflow() {
        let mut ladder = Ladder::new();
        ladder.insert(i64::MAX, 1);
        ladder.insert(i64::MIN, 2);
        assert_eq!(ladder.next_after(i64::MIN), Some(i64::MAX));
        assert_eq!(ladder.next_after(i64::MAX), None);
        assert_eq!(ladder.get(i64::MAX), Some(1));
    }

    /// Keys near each other and far apart: inside the window and through the hash map, both
    /// signs, chunks that empty and fill again.
    fn mixed_key() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => -300i64..300,
            1 => (-3i64..3).prop_map(|k| k * 17_000_000 + 5),
            1 => (-50i64..50).prop_map(|k| k * (WINDOW_CHUNKS as i64 * CHUNK_WIDTH / 8)),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreemap_near_and_far(ops in prop::collection::vec((any::<bool>(), mixed_key()), 1..400)) {
            let mut ladder = Ladder::new();
            let mut model = BTreeMap::new();
            for (index, (insert, key)) in ops.into_iter().enumerate() {
                if insert && !model.contains_key(&key) {
                    ladder.insert(key, index as u32);
                    model.insert(key, index as u32);
                } else if !insert && model.contains_key(&key) {
                    ladder.remove(key);
                    model.remove(&key);
                }
                if index == 200 {
                    ladder.clear();
                    model.clear();
                }
                prop_assert_eq!(ladder.best(), model.keys().next().copied());
                prop_assert_eq!(ladder.len(), model.len());
                prop_assert_eq!(ladder.get(key), model.get(&key).copied());
                if let Some((&first, _)) = model.iter().next() {
                    prop_assert_eq!(ladder.next_after(first), model.range(first + 1..).next().map(|(k, _)| *k));
                }
            }
            let listed: Vec<(i64, u32)> = ladder.iter().collect();
            let expected: Vec<(i64, u32)> = model.into_iter().collect();
            prop_assert_eq!(listed, expected);
        }

        #[test]
        fn behaves_like_a_btreemap(ops in prop::collection::vec((any::<bool>(), -300i64..300), 1..400)) {
            let mut ladder = Ladder::new();
            let mut model = BTreeMap::new();
            for (index, (insert, key)) in ops.into_iter().enumerate() {
                if insert && !model.contains_key(&key) {
                    ladder.insert(key, index as u32);
                    model.insert(key, index as u32);
                } else if !insert && model.contains_key(&key) {
                    ladder.remove(key);
                    model.remove(&key);
                }
                prop_assert_eq!(ladder.best(), model.keys().next().copied());
                prop_assert_eq!(ladder.len(), model.len());
                prop_assert_eq!(ladder.get(key), model.get(&key).copied());
            }
            let listed: Vec<(i64, u32)> = ladder.iter().collect();
            let expected: Vec<(i64, u32)> = model.into_iter().collect();
            prop_assert_eq!(listed, expected);
        }
    }
}
