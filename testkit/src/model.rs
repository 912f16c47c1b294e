//! The shadow model: which blocks are live, where they lie, and what they hold.
//!
//! A [`Block`] is one live block as the model knows it: address, requested and usable size,
//! and the seed of the pattern written over its usable range. [`Block::check`] compares it
//! with the allocator (`xa_owns`, `xa_usable_size`, contents).
//!
//! A [`Model`] indexes live blocks by address and refuses a block whose usable range overlaps
//! one it holds. Every [`Engine`](crate::Engine) keeps a `Model` of its own blocks. Engines on
//! several threads can in addition share one [`SharedModel`] (a `Model` behind a lock) that
//! holds the live blocks of all of them, including those in transit between threads as
//! [`Handoff`](crate::Handoff)s, so that an overlap between blocks of different threads is
//! caught as well; blocks whose handoff was dropped stay there until
//! [`SharedModel::free_leftovers`] frees them.

use crate::errno;
use crate::pattern::{check_sampled, pattern, sampled_bytes};
use core::ffi::c_void;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use xalloc::ffi::{xa_free, xa_owns, xa_usable_size};

/// A live block as the model knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub(crate) addr: usize,
    /// Requested bytes.
    pub(crate) req: usize,
    /// `xa_usable_size` when allocated; the whole range holds the pattern.
    pub(crate) usable: usize,
    /// Pattern seed.
    pub(crate) seed: u64,
}

impl Block {
    /// The block's address.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// The bytes requested for it.
    pub fn req(&self) -> usize {
        self.req
    }

    /// Its usable size when it was allocated.
    pub fn usable(&self) -> usize {
        self.usable
    }

    /// One past the end of the range the block occupies in the model: its usable range, at
    /// least one byte long.
    pub fn end(&self) -> usize {
        self.addr + self.usable.max(1)
    }

    /// Compare the block with the allocator: `xa_owns` is 1, `xa_usable_size` has not changed,
    /// and the (sampled) usable range still holds the pattern. Returns the bytes compared, or
    /// what is wrong, naming the block `what`.
    ///
    /// Only meaningful while the block is live: the model holds it, so nobody has freed it.
    pub fn check(&self, what: &str) -> Result<u64, String> {
        let p = self.addr as *const c_void;
        if xa_owns(p) != 1 {
            return Err(format!(
                "xa_owns is not 1 for {what} {:#x} ({} bytes)",
                self.addr, self.req
            ));
        }
        // SAFETY: the block is live (the model's contract).
        let u = unsafe { xa_usable_size(p) };
        if u != self.usable {
            return Err(format!(
                "usable size of {what} {:#x} ({} bytes) changed from {} to {u}",
                self.addr, self.req, self.usable
            ));
        }
        // SAFETY: the block is live with `usable` bytes.
        let bad = unsafe { check_sampled(p as *const u8, self.usable, self.usable, self.seed) };
        if let Some(i) = bad {
            // SAFETY: i < usable.
            let got = unsafe { *((self.addr + i) as *const u8) };
            return Err(format!(
                "{what} {:#x} ({} bytes, usable {}) was overwritten: byte {i} is {got:#04x}, \
                 expected {:#04x}",
                self.addr,
                self.req,
                self.usable,
                pattern(self.seed, i)
            ));
        }
        Ok(sampled_bytes(self.usable, self.usable) as u64)
    }
}

/// Verify a block outside an engine and free it, checking that `free` leaves `errno` alone;
/// panics naming the block `what` on any violation. Returns the bytes compared.
///
/// The caller has taken the block out of every model that held it, and nothing else refers
/// to it.
pub(crate) fn release(b: &Block, what: &str) -> u64 {
    let n = b.check(what).unwrap_or_else(|msg| panic!("opseq: {msg}"));
    errno::set(errno::SENTINEL);
    // SAFETY: b is live and, per the caller, referred to by nothing else: it is freed once.
    unsafe { xa_free(b.addr as *mut c_void) };
    let e = errno::get();
    assert!(
        e == errno::SENTINEL,
        "opseq: free of {what} {:#x} changed errno to {e}",
        b.addr
    );
    n
}

/// Live blocks by address; no two of them overlap.
#[derive(Debug, Default)]
pub struct Model {
    blocks: BTreeMap<usize, Block>,
    /// Usable bytes of all blocks.
    live_bytes: usize,
}

impl Model {
    /// An empty model.
    pub const fn new() -> Self {
        Model {
            blocks: BTreeMap::new(),
            live_bytes: 0,
        }
    }

    /// Add a live block, unless it overlaps one the model holds: then that block is returned
    /// and the model is unchanged.
    pub(crate) fn insert(&mut self, b: Block) -> Result<(), Block> {
        // The blocks held do not overlap each other, so if any of them overlaps b, the last one
        // starting below b's end does.
        if let Some((_, o)) = self.blocks.range(..b.end()).next_back() {
            if o.end() > b.addr {
                return Err(*o);
            }
        }
        self.blocks.insert(b.addr, b);
        self.live_bytes += b.usable;
        Ok(())
    }

    /// Take out the block at `addr`, if the model holds one there.
    pub(crate) fn remove(&mut self, addr: usize) -> Option<Block> {
        let b = self.blocks.remove(&addr)?;
        self.live_bytes -= b.usable;
        Some(b)
    }

    /// The block at `addr`, if any.
    pub fn get(&self, addr: usize) -> Option<&Block> {
        self.blocks.get(&addr)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Usable bytes of all blocks.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// The blocks in address order.
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks.values()
    }
}

/// One [`Model`] for the engines of several threads (each also keeps its own): every block any
/// of them allocates goes in, and stays until it is freed, also while it travels between
/// threads as a [`Handoff`](crate::Handoff). Share it as an `Arc`
/// ([`Engine::with_shared`](crate::Engine::with_shared)).
#[derive(Debug, Default)]
pub struct SharedModel {
    model: Mutex<Model>,
}

impl SharedModel {
    /// An empty shared model.
    pub fn new() -> Self {
        SharedModel::default()
    }

    /// Number of live blocks, all threads together.
    pub fn live_blocks(&self) -> usize {
        self.model.lock().len()
    }

    /// Usable bytes of all live blocks.
    pub fn live_bytes(&self) -> usize {
        self.model.lock().live_bytes()
    }

    /// [`Model::insert`] under the lock.
    pub(crate) fn insert(&self, b: Block) -> Result<(), Block> {
        self.model.lock().insert(b)
    }

    /// [`Model::remove`] under the lock.
    pub(crate) fn remove(&self, addr: usize) -> Option<Block> {
        self.model.lock().remove(addr)
    }

    /// Verify and free, from the calling thread, every block still in the model, and return
    /// how many there were. Once no engine and no handoff uses the model, those are exactly the
    /// blocks whose [`Handoff`](crate::Handoff) was dropped: sent to a thread that had already
    /// exited, or left in a channel when its receiver went away.
    ///
    /// Takes the last reference to the model; panics if an engine or a handoff still holds
    /// one, since their blocks are not left over.
    pub fn free_leftovers(self: Arc<Self>) -> usize {
        let shared = Arc::try_unwrap(self).unwrap_or_else(|s| {
            panic!(
                "opseq: free_leftovers while {} engines or handoffs still use the shared model",
                Arc::strong_count(&s) - 1
            )
        });
        let model = shared.model.into_inner();
        for b in model.blocks() {
            release(b, "left-over block");
        }
        model.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(addr: usize, usable: usize) -> Block {
        Block {
            addr,
            req: usable,
            usable,
            seed: 0,
        }
    }

    #[test]
    fn model_refuses_overlaps() {
        let mut m = Model::new();
        assert_eq!(m.insert(block(0x1000, 0x100)), Ok(()));
        assert_eq!(m.insert(block(0x1100, 0x100)), Ok(()));
        // Touching at either end is fine; overlapping by one byte is not.
        assert_eq!(m.insert(block(0x0f00, 0x100)), Ok(()));
        assert_eq!(m.insert(block(0x10ff, 1)), Err(block(0x1000, 0x100)));
        assert_eq!(m.insert(block(0x11ff, 0x10)), Err(block(0x1100, 0x100)));
        // A block covering several others is caught too.
        assert_eq!(m.insert(block(0x0e00, 0x1000)), Err(block(0x1100, 0x100)));
        // A zero-length block still takes one byte.
        assert_eq!(m.insert(block(0x1000, 0)), Err(block(0x1000, 0x100)));
        assert_eq!(m.len(), 3);
        assert_eq!(m.live_bytes(), 0x300);
        assert_eq!(m.remove(0x1000), Some(block(0x1000, 0x100)));
        assert_eq!(m.remove(0x1000), None);
        assert_eq!(m.insert(block(0x1080, 0x10)), Ok(()));
        assert_eq!(m.live_bytes(), 0x210);
        let addrs: Vec<usize> = m.blocks().map(Block::addr).collect();
        assert_eq!(addrs, [0x0f00, 0x1080, 0x1100]);
    }

    #[test]
    fn leftovers_are_checked_and_freed() {
        let shared = Arc::new(SharedModel::new());
        let mut e = crate::Engine::with_shared(crate::Config::default(), Arc::clone(&shared));
        for slot in 0..4 {
            e.apply(&crate::Op::Malloc { slot, size: 100 });
        }
        let h = e.hand_off(1).unwrap();
        let addr = h.addr();
        drop(h);
        e.finish();
        assert_eq!(shared.live_blocks(), 1);
        assert!(shared.live_bytes() >= 100);
        // Still allocated: the dropped handoff leaked it.
        assert_eq!(xa_owns(addr as *const c_void), 1);
        assert_eq!(shared.free_leftovers(), 1);
    }
}
