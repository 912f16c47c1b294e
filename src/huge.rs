//! L9: huge blocks — requests above `MEDIUM_LIMIT` (32 MiB), and requests aligned to more than
//! that — each its own mapping.
//!
//! Each huge block is its own `mmap`, page aligned (or aligned as asked), registered in an
//! open-addressing hash table keyed by address so that `free` can tell our mappings from
//! foreign pointers without touching the pointed-to memory. `realloc` resizes with `mremap`.

use crate::os::{self, PAGE};
use crate::sync::{Guard, RawLock};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Lock 4 in the lock order: the huge-block table.
pub static HUGE_LOCK: RawLock = RawLock::new("HUGE_LOCK");

/// Slots in the table (a power of two); at most 3/4 are used, so up to 49152 live huge blocks
/// (almost all above 32 MiB: far more than any address space holds).
const SLOTS: usize = 1 << 16;

#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    /// Block address; 0 for an empty slot.
    addr: usize,
    /// Mapping length in bytes (a multiple of the page size).
    len: usize,
}

/// The table, mapped on first use. Under HUGE_LOCK.
static TABLE: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Bytes in live huge mappings.
pub static HUGE_BYTES: AtomicUsize = AtomicUsize::new(0);

fn table() -> *mut Entry {
    let mut t = TABLE.load(Ordering::Relaxed);
    if t == 0 {
        t = os::map(SLOTS * core::mem::size_of::<Entry>()) as usize;
        TABLE.store(t, Ordering::Relaxed);
    }
    t as *mut Entry
}

#[inline]
fn hash(addr: usize) -> usize {
    ((addr >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48) & (SLOTS - 1)
}

/// Insert; caller holds the lock and checked capacity.
fn insert(t: *mut Entry, addr: usize, len: usize) {
    let mut i = hash(addr);
    loop {
        // SAFETY: i < SLOTS; the table is mapped.
        let e = unsafe { &mut *t.add(i) };
        if e.addr == 0 {
            *e = Entry { addr, len };
            return;
        }
        i = (i + 1) & (SLOTS - 1);
    }
}

/// Find the slot of `addr`; caller holds the lock.
fn find(t: *mut Entry, addr: usize) -> Option<usize> {
    let mut i = hash(addr);
    loop {
        // SAFETY: i < SLOTS; the table is mapped.
        let e = unsafe { &*t.add(i) };
        if e.addr == addr {
            return Some(i);
        }
        if e.addr == 0 {
            return None;
        }
        i = (i + 1) & (SLOTS - 1);
    }
}

/// Remove slot `i`, shifting later entries of the probe chain back; caller holds the lock.
fn remove_at(t: *mut Entry, mut i: usize) {
    loop {
        let mut j = i;
        loop {
            j = (j + 1) & (SLOTS - 1);
            // SAFETY: j < SLOTS.
            let ej = unsafe { *t.add(j) };
            if ej.addr == 0 {
                // SAFETY: i < SLOTS.
                unsafe { (*t.add(i)).addr = 0 };
                return;
            }
            let home = hash(ej.addr);
            // Move ej into the hole at i unless its home lies cyclically in (i, j].
            let between = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !between {
                // SAFETY: i < SLOTS.
                unsafe { *t.add(i) = ej };
                i = j;
                break;
            }
        }
    }
}

/// Map a huge block of at least `size` bytes aligned to `align` (a power of two). Null when out
/// of memory.
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    // At least one page: a zero-length mapping would be no mapping at all (an over-aligned
    // `aligned_alloc(align, 0)` lands here).
    let Some(len) = size.max(1).checked_add(PAGE - 1).map(|l| l & !(PAGE - 1)) else {
        return ptr::null_mut();
    };
    let p = if align <= PAGE {
        os::map(len)
    } else {
        os::map_aligned(len, align)
    };
    if p.is_null() {
        return p;
    }
    let _g = Guard::new(&HUGE_LOCK);
    let t = table();
    if t.is_null() || COUNT.load(Ordering::Relaxed) >= SLOTS / 4 * 3 {
        os::unmap(p, len);
        return ptr::null_mut();
    }
    insert(t, p as usize, len);
    COUNT.fetch_add(1, Ordering::Relaxed);
    HUGE_BYTES.fetch_add(len, Ordering::Relaxed);
    p
}

/// Usable size of huge block `p`, or `None` if `p` is not one of ours.
pub fn usable_size(p: *mut u8) -> Option<usize> {
    let _g = Guard::new(&HUGE_LOCK);
    let t = TABLE.load(Ordering::Relaxed) as *mut Entry;
    if t.is_null() {
        return None;
    }
    // SAFETY: find returned a valid slot index.
    find(t, p as usize).map(|i| unsafe { (*t.add(i)).len })
}

/// Unmap huge block `p`. Returns false if `p` is not one of ours.
pub fn free(p: *mut u8) -> bool {
    let len = {
        let _g = Guard::new(&HUGE_LOCK);
        let t = TABLE.load(Ordering::Relaxed) as *mut Entry;
        if t.is_null() {
            return false;
        }
        let Some(i) = find(t, p as usize) else {
            return false;
        };
        // SAFETY: valid slot.
        let len = unsafe { (*t.add(i)).len };
        remove_at(t, i);
        COUNT.fetch_sub(1, Ordering::Relaxed);
        HUGE_BYTES.fetch_sub(len, Ordering::Relaxed);
        len
    };
    os::unmap(p, len);
    true
}

/// Resize huge block `p` to hold `size` bytes with `mremap`. Returns the new address, or null
/// (with `p` intact) when the kernel refuses. `p` must be one of ours.
pub fn resize(p: *mut u8, size: usize) -> *mut u8 {
    let Some(new_len) = size.max(1).checked_add(PAGE - 1).map(|l| l & !(PAGE - 1)) else {
        return ptr::null_mut();
    };
    let _g = Guard::new(&HUGE_LOCK);
    let t = TABLE.load(Ordering::Relaxed) as *mut Entry;
    let Some(i) = find(t, p as usize) else {
        return ptr::null_mut();
    };
    // SAFETY: valid slot.
    let old_len = unsafe { (*t.add(i)).len };
    if new_len == old_len {
        return p;
    }
    let q = os::remap(p, old_len, new_len);
    if q.is_null() {
        return q;
    }
    remove_at(t, i);
    insert(t, q as usize, new_len);
    HUGE_BYTES.fetch_add(new_len, Ordering::Relaxed);
    HUGE_BYTES.fetch_sub(old_len, Ordering::Relaxed);
    q
}

/// Call `f(address, mapped bytes)` on every live huge block, under HUGE_LOCK (`f` must not
/// allocate or take a lock).
pub fn for_each(mut f: impl FnMut(usize, usize)) {
    let _g = Guard::new(&HUGE_LOCK);
    let t = TABLE.load(Ordering::Relaxed) as *mut Entry;
    if t.is_null() {
        return;
    }
    for i in 0..SLOTS {
        // SAFETY: i < SLOTS; the table is mapped.
        let e = unsafe { *t.add(i) };
        if e.addr != 0 {
            f(e.addr, e.len);
        }
    }
}

/// Number of live huge blocks.
pub fn count() -> usize {
    COUNT.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_survives_collisions_and_removal() {
        let _g = Guard::new(&HUGE_LOCK);
        let t = os::map(SLOTS * core::mem::size_of::<Entry>()) as *mut Entry;
        // Addresses chosen to collide in runs.
        let addrs: Vec<usize> = (1..3000usize).map(|i| i << 28 | (i % 7) << 12).collect();
        for &a in &addrs {
            insert(t, a, a >> 12);
        }
        for (k, &a) in addrs.iter().enumerate() {
            if k % 3 == 0 {
                let i = find(t, a).unwrap();
                remove_at(t, i);
            }
        }
        for (k, &a) in addrs.iter().enumerate() {
            let f = find(t, a);
            if k % 3 == 0 {
                assert!(f.is_none());
            } else {
                // SAFETY: valid slot.
                assert_eq!(unsafe { (*t.add(f.unwrap())).len }, a >> 12);
            }
        }
        os::unmap(t as *mut u8, SLOTS * core::mem::size_of::<Entry>());
    }
}
