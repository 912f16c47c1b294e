//! L10: the heap map — every arena's pages with their state, and the huge blocks — written as
//! text (format: `docs/profile-format.md`) for `xalloc-prof heapmap` to draw and measure.
//!
//! The arenas are read under [`PAGE_LOCK`] into a buffer mapped for the occasion, so the lock is
//! held only while memory is copied, and the file is written after it is released. Slab fill
//! (`used`) is a snapshot: owners change it without the lock.

use crate::arena::{self, ARENA_PAGES, ARENA_SIZE, MAP_SHIFT, META_PAGES, PAGE_LOCK};
use crate::huge;
use crate::os::{self, PAGE};
use crate::pages::LARGEST_MISS_PAGES;
use crate::run_cache;
use crate::span::Kind;
use crate::sync::Guard;
use crate::textout::{FileOut, Text};
use core::sync::atomic::Ordering;

/// Bytes of buffer per arena: room for a line of up to 40 bytes per page (free pages alternate
/// between resident and purged one by one at worst); mapped, so only what is written is touched.
const PER_ARENA: usize = ARENA_PAGES * 40;

/// A bounded text buffer in mapped memory.
struct Snap {
    p: *mut u8,
    cap: usize,
    len: usize,
    cut: bool,
}

impl Text for Snap {
    fn put(&mut self, s: &[u8]) -> &mut Self {
        if self.len + s.len() > self.cap {
            self.cut = true;
            return self;
        }
        // SAFETY: p is mapped for cap bytes and len + s.len() <= cap.
        unsafe { core::ptr::copy_nonoverlapping(s.as_ptr(), self.p.add(self.len), s.len()) };
        self.len += s.len();
        self
    }
}

/// The state of a page run, for one `run` line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Resident,
    Purged,
}

fn run_line(s: &mut Snap, first: usize, n: usize) -> &mut Snap {
    s.put(b"run ")
        .dec(first as u64)
        .put(b" ")
        .dec(n as u64)
        .put(b" ")
}

/// Write the heap map to `fd`.
pub fn dump(fd: i32) {
    // Arenas are only ever added; one more may appear while we map the buffer.
    let arenas = arena::ARENA_BYTES.load(Ordering::Relaxed) / ARENA_SIZE + 1;
    let cap = arenas * PER_ARENA + (64 << 10);
    let p = os::map(cap.next_multiple_of(PAGE));
    let mut o = FileOut::new(fd);
    o.put(b"xalloc-heap-map 1\npid ")
        .dec(os::pid() as u64)
        .put(b"\npage ")
        .dec(PAGE as u64)
        .put(b"\n");
    if p.is_null() {
        o.put(b"end\n");
        return;
    }
    let mut s = Snap {
        p,
        cap,
        len: 0,
        cut: false,
    };
    {
        let _g = Guard::new(&PAGE_LOCK);
        let mut index = 0u64;
        arena::for_each_arena(|a| {
            s.put(b"arena ")
                .dec(index)
                .put(b" ")
                .hex(a.base())
                .put(b" ")
                .dec(ARENA_PAGES as u64)
                .put(b"\n");
            index += 1;
            run_line(&mut s, 0, META_PAGES).put(b"meta\n");
            let mut i = META_PAGES;
            // a pending run of free pages: (first, state)
            let mut free: Option<(usize, State)> = None;
            while i < ARENA_PAGES {
                let sp = a.pagemap[i >> MAP_SHIFT].load(Ordering::Relaxed);
                // SAFETY: page-map entries are valid span headers (never null).
                let live = unsafe { sp.as_ref() }.filter(|sp| {
                    sp.kind() != Kind::Unused && sp.start() as usize == a.base() + i * PAGE
                });
                if let Some(sp) = live {
                    if let Some((f, st)) = free.take() {
                        free_line(&mut s, f, i - f, st);
                    }
                    let n = sp.pages().max(1);
                    run_line(&mut s, i, n);
                    if sp.kind() == Kind::Slab {
                        let bs = sp.block_size();
                        s.put(b"slab ")
                            .dec(sp.class().index() as u64)
                            .put(b" ")
                            .dec(bs as u64)
                            .put(b" ")
                            .dec(sp.used() as u64)
                            .put(b" ")
                            .dec((n * PAGE / bs.max(1)) as u64)
                            .put(b"\n");
                    } else {
                        s.put(b"medium ").dec((n * PAGE) as u64).put(b"\n");
                    }
                    i += n;
                    continue;
                }
                // a run in a heap's run cache is free and resident
                let (st, n) = match run_cache::cached_run_at(sp, a.base() + i * PAGE) {
                    Some(n) => (State::Resident, n),
                    None if a.is_dirty(i) => (State::Resident, 1),
                    None => (State::Purged, 1),
                };
                match free {
                    Some((_, cur)) if cur == st => {}
                    Some((f, cur)) => {
                        free_line(&mut s, f, i - f, cur);
                        free = Some((i, st));
                    }
                    None => free = Some((i, st)),
                }
                i += n;
            }
            if let Some((f, st)) = free {
                free_line(&mut s, f, ARENA_PAGES - f, st);
            }
        });
    }
    huge::for_each(|addr, len| {
        s.put(b"huge ")
            .hex(addr)
            .put(b" ")
            .dec(len as u64)
            .put(b" ")
            .dec(len as u64)
            .put(b"\n");
    });
    s.put(b"failed ")
        .dec((LARGEST_MISS_PAGES.load(Ordering::Relaxed) * PAGE) as u64)
        .put(b"\n");
    let cut = s.cut;
    // SAFETY: the first s.len bytes of the mapping were written above.
    o.put(unsafe { core::slice::from_raw_parts(p, s.len) });
    if cut {
        o.put(b"truncated\n");
    }
    o.put(b"end\n");
    o.flush();
    os::unmap(p, cap.next_multiple_of(PAGE));
}

fn free_line(s: &mut Snap, first: usize, n: usize, st: State) {
    run_line(s, first, n).put(match st {
        State::Resident => b"free-resident\n".as_slice(),
        State::Purged => b"free-purged\n",
    });
}
