//! The table behind the opaque `scm_manage *` tokens.
//!
//! A token is an integer, never a pointer: the low half of its bits is the slot index plus one
//! (so no token is zero), the high half is the slot's generation. Removing an entry bumps the
//! generation, so a released or stale token no longer matches, and any forged value either
//! falls outside the table or meets the wrong generation.
//!
//! Slots never move: the table is a list of chunks that double in size, each allocated once and
//! reached without a global lock. Each slot has its own mutex, which serializes the calls on one
//! entry and nothing else; only inserting and removing touch the shared free list.
//!
//! A slot whose generation would wrap is retired, so that no token ever comes back to life; the
//! free list is first in, first out, so that the slots in use age together and none retires
//! early. A table with `I` index bits and `G` generation bits thus hands out at most
//! `(2^I - 1) * (2^G - 2)` tokens in its lifetime, exactly that many when every entry is
//! removed in time (an entry that stays keeps its slot from aging): about 1.8 * 10^19 on 64-bit
//! systems, and 65535 * 65534 = 4,294,770,690 on 32-bit ones, after which inserting fails for
//! good.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The library's split of a token: half index, half generation, whatever the width.
const HALF: u32 = usize::BITS / 2;
const FIRST_CHUNK_LEN: usize = 64;
/// Enough chunks to hold every index the library's token can name (smaller tables use fewer).
const CHUNKS: usize = (HALF - FIRST_CHUNK_LEN.trailing_zeros()) as usize + 1;

struct Slot<T> {
    /// The generation of the entry in the slot, or of the next one. Written only under `value`'s
    /// lock; read without it as a fast refusal of stale tokens.
    generation: AtomicUsize,
    value: Mutex<Option<T>>,
}

struct Allocator {
    free: VecDeque<usize>,
    next_fresh: usize,
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct NotLive;

/// `INDEX_BITS` and `GENERATION_BITS` are the token's two parts; tests use small ones, to reach
/// the limits.
pub struct HandleTable<T, const INDEX_BITS: u32 = HALF, const GENERATION_BITS: u32 = HALF> {
    chunks: [OnceLock<Box<[Slot<T>]>>; CHUNKS],
    allocator: Mutex<Allocator>,
}

/// Locks a mutex even when a panic poisoned it: every entry stays usable after a caught panic,
/// and the data it guards is always left consistent between statements.
pub fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The chunk an index lives in, and its offset there.
fn locate(index: usize) -> (usize, usize) {
    let position = index / FIRST_CHUNK_LEN + 1;
    let chunk = (usize::BITS - 1 - position.leading_zeros()) as usize;
    let chunk_start = FIRST_CHUNK_LEN * ((1 << chunk) - 1);
    (chunk, index - chunk_start)
}

impl<T, const INDEX_BITS: u32, const GENERATION_BITS: u32> HandleTable<T, INDEX_BITS, GENERATION_BITS> {
    const INDEX_MASK: usize = {
        assert!(INDEX_BITS <= HALF && INDEX_BITS + GENERATION_BITS <= usize::BITS);
        (1 << INDEX_BITS) - 1
    };
    /// The last generation a slot may take; a slot that reaches it is retired rather than
    /// reused, so a token can never come back to life by the generation wrapping around.
    const LAST_GENERATION: usize = usize::MAX >> (usize::BITS - GENERATION_BITS);

    fn encode(index: usize, generation: usize) -> usize {
        (generation << INDEX_BITS) | (index + 1)
    }

    /// The index and generation a token names, or `None` for a value no token ever has.
    fn decode(token: usize) -> Option<(usize, usize)> {
        let index_plus_one = token & Self::INDEX_MASK;
        let generation = token >> INDEX_BITS;
        (index_plus_one != 0 && generation != 0 && generation <= Self::LAST_GENERATION)
            .then(|| (index_plus_one - 1, generation))
    }

    /// An empty table; `const` so that the library's table is a plain static, with nothing to
    /// initialize at run time.
    pub const fn new() -> Self {
        HandleTable {
            chunks: [const { OnceLock::new() }; CHUNKS],
            allocator: Mutex::new(Allocator { free: VecDeque::new(), next_fresh: 0 }),
        }
    }

    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        let (chunk, offset) = locate(index);
        self.chunks.get(chunk)?.get()?.get(offset)
    }

    fn slot_or_grow(&self, index: usize) -> &Slot<T> {
        let (chunk, offset) = locate(index);
        let slots = self.chunks[chunk].get_or_init(|| {
            (0..FIRST_CHUNK_LEN << chunk)
                .map(|_| Slot { generation: AtomicUsize::new(1), value: Mutex::new(None) })
                .collect()
        });
        &slots[offset]
    }

    /// Stores a value and returns its token; `None` when every index is in use or retired.
    pub fn insert(&self, value: T) -> Option<usize> {
        let index = {
            let mut allocator = lock_ignoring_poison(&self.allocator);
            match allocator.free.pop_front() {
                Some(index) => index,
                None if allocator.next_fresh < Self::INDEX_MASK => {
                    allocator.next_fresh += 1;
                    allocator.next_fresh - 1
                }
                None => return None,
            }
        };
        let slot = self.slot_or_grow(index);
        let mut guard = lock_ignoring_poison(&slot.value);
        *guard = Some(value);
        Some(Self::encode(index, slot.generation.load(Ordering::Relaxed)))
    }

    /// Runs `f` on the live entry a token names, holding that entry's lock for the call.
    pub fn with<R>(&self, token: usize, f: impl FnOnce(&mut T) -> R) -> Result<R, NotLive> {
        let (index, generation) = Self::decode(token).ok_or(NotLive)?;
        let slot = self.slot(index).ok_or(NotLive)?;
        if slot.generation.load(Ordering::Relaxed) != generation {
            return Err(NotLive);
        }
        #[cfg(feature = "test-hooks")]
        crate::test_hooks::run_window(crate::test_hooks::Window::Lookup);
        let mut guard = lock_ignoring_poison(&slot.value);
        // Checked again under the lock: the entry may have been removed while we waited.
        if slot.generation.load(Ordering::Relaxed) != generation {
            return Err(NotLive);
        }
        guard.as_mut().map(f).ok_or(NotLive)
    }

    /// Takes the entry out when `is_kind` accepts it; the token is dead from here on. Waits for
    /// a call in progress on the entry to finish first. An entry `is_kind` refuses (a token of
    /// another kind of object) stays where it is.
    pub fn remove_if(&self, token: usize, is_kind: impl FnOnce(&T) -> bool) -> Result<T, NotLive> {
        let (index, generation) = Self::decode(token).ok_or(NotLive)?;
        let slot = self.slot(index).ok_or(NotLive)?;
        let value = {
            let mut guard = lock_ignoring_poison(&slot.value);
            if slot.generation.load(Ordering::Relaxed) != generation || !guard.as_ref().is_some_and(is_kind) {
                return Err(NotLive);
            }
            let value = guard.take().ok_or(NotLive)?;
            slot.generation.store(generation + 1, Ordering::Relaxed);
            value
        };
        if generation + 1 < Self::LAST_GENERATION {
            lock_ignoring_poison(&self.allocator).free.push_back(index);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The library's table, for its constants.
    type Library = HandleTable<()>;
    const INDEX_BITS: u32 = HALF;
    const INDEX_MASK: usize = Library::INDEX_MASK;
    const LAST_GENERATION: usize = Library::LAST_GENERATION;

    #[test]
    fn chunks_tile_the_index_space() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(191), (1, 127));
        assert_eq!(locate(192), (2, 0));
        let (chunk, offset) = locate(INDEX_MASK - 1);
        assert!(chunk < CHUNKS);
        assert!(offset < FIRST_CHUNK_LEN << chunk);
    }

    #[test]
    fn tokens_are_never_zero_and_round_trip() {
        let table: HandleTable<_> = HandleTable::new();
        let a = table.insert("a").unwrap();
        let b = table.insert("b").unwrap();
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(table.with(a, |v| *v), Ok("a"));
        assert_eq!(table.with(b, |v| *v), Ok("b"));
    }

    #[test]
    fn removed_tokens_stay_dead_when_the_slot_is_reused() {
        let table: HandleTable<_> = HandleTable::new();
        let old = table.insert(1).unwrap();
        assert_eq!(table.remove_if(old, |_| true), Ok(1));
        assert_eq!(table.remove_if(old, |_| true), Err(NotLive));
        let new = table.insert(2).unwrap();
        assert_eq!(new & INDEX_MASK, old & INDEX_MASK, "the slot is reused");
        assert_eq!(table.with(old, |v| *v), Err(NotLive));
        assert_eq!(table.with(new, |v| *v), Ok(2));
    }

    #[test]
    fn an_entry_of_another_kind_is_not_removed() {
        let table: HandleTable<_> = HandleTable::new();
        let token = table.insert("manager").unwrap();
        assert_eq!(table.remove_if(token, |v| *v == "monitor"), Err(NotLive));
        assert_eq!(table.with(token, |v| *v), Ok("manager"));
        assert_eq!(table.remove_if(token, |v| *v == "manager"), Ok("manager"));
    }

    #[test]
    fn forged_tokens_are_refused() {
        let table: HandleTable<_> = HandleTable::new();
        let live = table.insert(()).unwrap();
        for forged in [1, usize::MAX, live + 1, live ^ (1 << INDEX_BITS), 1 << INDEX_BITS, INDEX_MASK] {
            assert_eq!(table.with(forged, |_| ()), Err(NotLive), "{forged:#x}");
        }
        // A pseudo-random sweep over the whole token space.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let token = x as usize;
            if token != live {
                assert_eq!(table.with(token, |_| ()), Err(NotLive));
            }
        }
    }

    #[test]
    fn a_slot_at_its_last_generation_is_retired() {
        let table: HandleTable<_> = HandleTable::new();
        let token = table.insert(0).unwrap();
        let index = token & INDEX_MASK;
        // Jump the slot to its second-to-last generation, as if reused that often.
        table.slot(index - 1).unwrap().generation.store(LAST_GENERATION - 1, Ordering::Relaxed);
        table.remove_if(token, |_| true).unwrap_err();
        let aged = HandleTable::<i32>::encode(index - 1, LAST_GENERATION - 1);
        assert_eq!(table.remove_if(aged, |_| true), Ok(0));
        let next = table.insert(1).unwrap();
        assert_ne!(next & INDEX_MASK, index, "a retired slot is not handed out again");
    }

    #[test]
    fn grows_past_several_chunks() {
        let table: HandleTable<_> = HandleTable::new();
        let tokens: Vec<usize> = (0..5_000).map(|i| table.insert(i).unwrap()).collect();
        for (i, token) in tokens.iter().enumerate() {
            assert_eq!(table.with(*token, |v| *v), Ok(i));
        }
        for token in &tokens {
            table.remove_if(*token, |_| true).unwrap();
        }
        for token in &tokens {
            assert_eq!(table.with(*token, |v| *v), Err(NotLive));
        }
    }

    #[test]
    fn the_free_list_rotates_through_the_released_slots() {
        let table: HandleTable<u32> = HandleTable::new();
        let tokens: Vec<usize> = (0..4).map(|i| table.insert(i).unwrap()).collect();
        for token in &tokens {
            table.remove_if(*token, |_| true).unwrap();
        }
        // First released, first reused: each slot is reused in turn, not the last one over and
        // over.
        let reused: Vec<usize> = (0..4).map(|i| table.insert(i).unwrap() & INDEX_MASK).collect();
        let first: Vec<usize> = tokens.iter().map(|token| token & INDEX_MASK).collect();
        assert_eq!(reused, first);
    }

    /// The lifetime bound the header states, on a table small enough to reach it: with 3 index
    /// and 3 generation bits, 7 slots of 6 generations each.
    #[test]
    fn a_table_hands_out_exactly_its_lifetime_of_tokens() {
        type Small = HandleTable<u32, 3, 3>;
        assert_eq!(Small::INDEX_MASK, 7);
        assert_eq!(Small::LAST_GENERATION, 7);
        let lifetime = 7 * (7 - 1);
        let table = Small::new();
        let mut seen = std::collections::HashSet::new();
        // A create/release loop with up to two entries alive; when nothing more can be
        // inserted, the live ones are released and the loop goes on until the table is spent.
        let mut live = std::collections::VecDeque::new();
        let mut created = 0;
        loop {
            match table.insert(created) {
                Some(token) => {
                    assert!(seen.insert(token), "token {token:#x} handed out twice");
                    created += 1;
                    live.push_back(token);
                    if live.len() == 2 {
                        table.remove_if(live.pop_front().unwrap(), |_| true).unwrap();
                    }
                }
                None if live.is_empty() => break,
                None => {
                    for token in live.drain(..) {
                        assert!(table.with(token, |_| ()).is_ok());
                        table.remove_if(token, |_| true).unwrap();
                    }
                }
            }
            assert!(created <= lifetime, "more tokens than the bound");
        }
        assert_eq!(created, lifetime);
        // The library's table, in the header's words.
        let library_lifetime = (usize::MAX >> HALF) as u128 * ((usize::MAX >> HALF) as u128 - 1);
        #[cfg(target_pointer_width = "32")]
        assert_eq!(library_lifetime, 4_294_770_690);
        assert!(library_lifetime >= 4_294_770_690);
    }
}
