//! Drives the whole allocator (through its C API) with random operations from several threads
//! against a shadow model: no two live blocks overlap, every block keeps its contents and its
//! alignment, usable sizes cover the request, and the heap invariant checker passes throughout.
//! Blocks travel between threads, so remote frees, full slabs and adoption are exercised.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::mpsc;
use xalloc::ffi::{
    xa_aligned_alloc, xa_calloc, xa_check_heap, xa_free, xa_malloc, xa_owns, xa_realloc,
    xa_usable_size,
};

/// The tests share the shadow, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Live blocks of every thread: address -> (length, tag).
static SHADOW: Mutex<BTreeMap<usize, (usize, u8)>> = Mutex::new(BTreeMap::new());

fn rng(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn size_for(s: &mut u64) -> usize {
    match rng(s) % 100 {
        0..=59 => (rng(s) % 256) as usize,
        60..=89 => (rng(s) % 8192) as usize,
        90..=97 => 32 * 1024 + (rng(s) % (512 * 1024)) as usize,
        _ => (rng(s) % (40 << 20)) as usize,
    }
}

#[derive(Clone, Copy)]
struct Blk {
    p: usize,
    len: usize,
    tag: u8,
}
// SAFETY: a block is plain memory owned by whoever holds the Blk.
unsafe impl Send for Blk {}

fn fill(b: &Blk) {
    // Write the tag at a spread of positions (all of small blocks, sampled for big ones).
    let step = (b.len / 4096).max(1);
    for i in (0..b.len).step_by(step) {
        // SAFETY: the block is live and at least len bytes.
        unsafe { *((b.p + i) as *mut u8) = b.tag ^ (i as u8) };
    }
}

fn verify(b: &Blk) {
    let step = (b.len / 4096).max(1);
    for i in (0..b.len).step_by(step) {
        // SAFETY: the block is live and at least len bytes.
        let v = unsafe { *((b.p + i) as *const u8) };
        assert_eq!(
            v,
            b.tag ^ (i as u8),
            "block {:#x}+{i} lost its contents",
            b.p
        );
    }
}

fn insert(b: &Blk) {
    let mut m = SHADOW.lock();
    let end = b.p + b.len.max(1);
    if let Some((&q, &(ql, _))) = m.range(..end).next_back() {
        assert!(
            q + ql.max(1) <= b.p,
            "block {:#x}+{} overlaps {:#x}+{}",
            b.p,
            b.len,
            q,
            ql
        );
    }
    m.insert(b.p, (b.len, b.tag));
}

fn remove(b: &Blk) {
    assert!(SHADOW.lock().remove(&b.p).is_some());
}

fn new_block(s: &mut u64, tag: u8) -> Option<Blk> {
    let len = size_for(s);
    let (p, align) = match rng(s) % 4 {
        0 => (xa_calloc(1, len), 16),
        1 => {
            let align = 1usize << (4 + rng(s) % 16);
            (xa_aligned_alloc(align, len), align)
        }
        _ => (xa_malloc(len), 16),
    };
    assert!(!p.is_null(), "allocation of {len} bytes failed");
    let p = p as usize;
    assert_eq!(p % align, 0, "{len} bytes at {p:#x} not aligned to {align}");
    // SAFETY: p is live.
    assert!(unsafe { xa_usable_size(p as *const c_void) } >= len);
    assert_eq!(xa_owns(p as *const c_void), 1);
    let b = Blk { p, len, tag };
    insert(&b);
    fill(&b);
    Some(b)
}

fn release(b: Blk) {
    verify(&b);
    remove(&b);
    // SAFETY: b is live and ours.
    unsafe { xa_free(b.p as *mut c_void) };
}

fn worker(seed: u64, steps: usize, tx: mpsc::Sender<Blk>, rx: mpsc::Receiver<Blk>) {
    let mut s = seed;
    let mut live: Vec<Blk> = Vec::new();
    for step in 0..steps {
        let tag = (rng(&mut s) % 255) as u8 + 1;
        match rng(&mut s) % 10 {
            0..=3 => live.extend(new_block(&mut s, tag)),
            4..=5 if !live.is_empty() => {
                let i = (rng(&mut s) as usize) % live.len();
                release(live.swap_remove(i));
            }
            6 if !live.is_empty() => {
                let i = (rng(&mut s) as usize) % live.len();
                let b = live[i];
                verify(&b);
                remove(&b);
                let len = size_for(&mut s);
                // SAFETY: b is live and ours.
                let q = unsafe { xa_realloc(b.p as *mut c_void, len) } as usize;
                if len == 0 {
                    assert_eq!(q, 0);
                    live.swap_remove(i);
                    continue;
                }
                assert!(q != 0 && q % 16 == 0);
                let nb = Blk { p: q, len, tag };
                // The common prefix survived the move.
                let keep = Blk {
                    p: q,
                    len: b.len.min(len),
                    tag: b.tag,
                };
                if keep.len == b.len {
                    verify(&keep);
                }
                insert(&nb);
                fill(&nb);
                live[i] = nb;
            }
            7 if !live.is_empty() => {
                let i = (rng(&mut s) as usize) % live.len();
                let _ = tx.send(live.swap_remove(i));
            }
            _ => {
                while let Ok(b) = rx.try_recv() {
                    release(b);
                }
            }
        }
        if step % 64 == 0 {
            xa_check_heap();
        }
    }
    // Leave some blocks alive for other threads to free after this one exits.
    for b in live {
        let _ = tx.send(b);
    }
    xa_check_heap();
}

#[test]
fn threads_against_a_shadow_model() {
    let _serial = SERIAL.lock();
    const N: usize = 4;
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..N {
        let (tx, rx) = mpsc::channel::<Blk>();
        txs.push(tx);
        rxs.push(rx);
    }
    let mut handles = Vec::new();
    for (i, rx) in rxs.into_iter().enumerate() {
        let tx = txs[(i + 1) % N].clone();
        handles.push(std::thread::spawn(move || {
            worker(0x1234_5678 + i as u64 * 7919, 3000, tx, rx)
        }));
    }
    drop(txs);
    for h in handles {
        h.join().unwrap();
    }
    // Whatever is left was sent to channels whose receivers are gone; the shadow still lists
    // those blocks: free them here, from a thread that allocated none of them.
    let left: Vec<(usize, (usize, u8))> = SHADOW.lock().iter().map(|(&p, &v)| (p, v)).collect();
    for (p, (len, tag)) in left {
        release(Blk { p, len, tag });
    }
    xa_check_heap();
    assert!(SHADOW.lock().is_empty());
}

#[test]
fn many_short_threads_leave_blocks_behind() {
    let _serial = SERIAL.lock();
    let mut kept = Vec::new();
    for round in 0..200 {
        let h = std::thread::spawn(move || {
            let mut s = 99 + round as u64;
            (0..20)
                .map(|_| new_block(&mut s, 7).unwrap())
                .collect::<Vec<_>>()
        });
        kept.extend(h.join().unwrap());
        if kept.len() > 1000 {
            for b in kept.drain(..) {
                release(b);
            }
        }
    }
    for b in kept {
        release(b);
    }
    xa_check_heap();
}
