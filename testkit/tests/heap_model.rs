//! Drives the whole allocator (through its C API) with random operations from several threads
//! at once: one testkit [`Engine`] per thread, all of them entering their blocks in one
//! [`SharedModel`]. So no two live blocks of any threads overlap (blocks in transit between
//! threads included), every block keeps its contents, its alignment, its usable size and
//! `xa_owns`, `errno` is left alone, and the heap invariant checker passes throughout. Blocks
//! travel between threads and outlive the threads that allocated them, so remote frees, full
//! slabs and the adoption of abandoned heaps are exercised.
//!
//! The op mix here differs from the byte-decoded sequences of `opseq_property.rs`: sizes are
//! drawn so that about a tenth of the blocks are medium or huge (up to 40 MiB), alignments go
//! up to 512 KiB, and about one op in ten sends a block to another thread.

use std::sync::{Arc, mpsc};
use xalloc::ffi::xa_check_heap;
use xalloc_testkit::{Config, Engine, Handoff, NewSize, Op, SLOTS, SharedModel, Summary};

fn rng(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// A request size: 60% up to 255 bytes, 30% up to 8 KiB, 8% medium (32..544 KiB), 2% up to
/// 40 MiB (medium runs and huge mappings).
fn size_for(s: &mut u64) -> usize {
    match rng(s) % 100 {
        0..=59 => (rng(s) % 256) as usize,
        60..=89 => (rng(s) % 8192) as usize,
        90..=97 => 32 * 1024 + (rng(s) % (512 * 1024)) as usize,
        _ => (rng(s) % (40 << 20)) as usize,
    }
}

/// A random allocation into `slot`: a quarter `calloc`, a quarter `aligned_alloc` (16 B to
/// 512 KiB alignment), half `malloc`.
fn alloc_op(s: &mut u64, slot: u8) -> Op {
    let size = size_for(s);
    match rng(s) % 4 {
        0 => Op::Calloc { slot, n: 1, size },
        1 => Op::AlignedAlloc {
            slot,
            align_log2: 4 + (rng(s) % 16) as u8,
            size,
        },
        _ => Op::Malloc { slot, size },
    }
}

/// The first slot at or after a random one for which `want(occupied)` holds, if any.
fn pick_slot(e: &Engine, s: &mut u64, want: bool) -> Option<u8> {
    let start = rng(s) as usize;
    (0..SLOTS)
        .map(|k| ((start + k) % SLOTS) as u8)
        .find(|&slot| e.occupied(slot) == want)
}

/// An empty slot if there is one, else any slot (whose block the allocation then frees).
fn free_slot(e: &Engine, s: &mut u64) -> u8 {
    pick_slot(e, s, false).unwrap_or_else(|| rng(s) as u8)
}

/// The engines of these tests: `xa_check_heap` as often as asked (every 64 steps), and at the
/// end of each engine.
fn config() -> Config {
    Config {
        max_heap_checks: u32::MAX,
        ..Config::default()
    }
}

fn worker(
    seed: u64,
    steps: usize,
    shared: Arc<SharedModel>,
    tx: mpsc::Sender<Handoff>,
    rx: mpsc::Receiver<Handoff>,
) -> (Summary, u64) {
    let mut s = seed;
    let mut e = Engine::with_shared(config(), shared);
    let mut received = 0u64;
    for step in 0..steps {
        let what = rng(&mut s) % 10;
        let live = if (4..=7).contains(&what) {
            pick_slot(&e, &mut s, true)
        } else {
            None
        };
        match (what, live) {
            (0..=3, _) => {
                let slot = free_slot(&e, &mut s);
                e.apply(&alloc_op(&mut s, slot));
            }
            (4..=5, Some(slot)) => e.apply(&Op::Free { slot }),
            (6, Some(slot)) => e.apply(&Op::Realloc {
                slot,
                size: NewSize::Abs(size_for(&mut s)),
            }),
            // A send fails once the receiving thread has exited: the handoff is dropped and
            // its block, still live in the shared model, is freed by the main thread.
            (7, Some(slot)) => {
                if let Some(h) = e.hand_off(slot) {
                    let _ = tx.send(h);
                }
            }
            // Blocks from the previous thread: most are freed here at once, one in four is
            // taken in, to be verified, resized and freed by later ops of this thread.
            _ => {
                while let Ok(h) = rx.try_recv() {
                    received += 1;
                    if rng(&mut s) % 4 == 0 {
                        let slot = free_slot(&e, &mut s);
                        e.take_in(h, slot);
                    } else {
                        h.free();
                    }
                }
            }
        }
        if step % 64 == 0 {
            e.apply(&Op::CheckHeap);
        }
    }
    // Leave every live block for other threads to free after this one exits.
    for slot in 0..=u8::MAX {
        if let Some(h) = e.hand_off(slot) {
            let _ = tx.send(h);
        }
    }
    // Nothing is left to free; this checks the heap.
    (e.finish(), received)
}

#[test]
fn threads_against_a_shadow_model() {
    const N: usize = 4;
    let shared = Arc::new(SharedModel::new());
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..N {
        let (tx, rx) = mpsc::channel::<Handoff>();
        txs.push(tx);
        rxs.push(rx);
    }
    let mut handles = Vec::new();
    for (i, rx) in rxs.into_iter().enumerate() {
        let tx = txs[(i + 1) % N].clone();
        let shared = Arc::clone(&shared);
        handles.push(std::thread::spawn(move || {
            worker(0x1234_5678 + i as u64 * 7919, 3000, shared, tx, rx)
        }));
    }
    drop(txs);
    let mut total = Summary::default();
    let mut received = 0;
    for h in handles {
        let (sum, r) = h
            .join()
            .expect("a worker failed (its panic message is above)");
        total += sum;
        received += r;
    }
    // What is left was sent to threads that had exited, or was still in a channel when its
    // receiver exited; those handoffs were dropped, and the shared model still lists their
    // blocks: verify and free them here, from a thread that allocated none of them.
    let left = shared.free_leftovers();
    xa_check_heap();
    eprintln!("four threads: {total:?}, {received} blocks received, {left} left over");
    assert!(total.allocations > 1000);
    assert!(received > 0 && left > 0);
}

#[test]
fn many_short_threads_leave_blocks_behind() {
    let shared = Arc::new(SharedModel::new());
    let mut kept: Vec<Handoff> = Vec::new();
    let mut blocks = 0;
    for round in 0..200u64 {
        let shared = Arc::clone(&shared);
        let h = std::thread::spawn(move || {
            let mut s = 99 + round;
            let mut e = Engine::with_shared(
                Config {
                    check_heap_at_end: false,
                    ..config()
                },
                shared,
            );
            for slot in 0..20 {
                e.apply(&alloc_op(&mut s, slot));
            }
            let out: Vec<Handoff> = (0..20).filter_map(|slot| e.hand_off(slot)).collect();
            e.finish();
            out
        });
        let out = h
            .join()
            .expect("a thread failed (its panic message is above)");
        blocks += out.len();
        kept.extend(out);
        // Freed by the main thread once their threads have exited.
        if kept.len() > 1000 {
            for h in kept.drain(..) {
                h.free();
            }
        }
    }
    for h in kept {
        h.free();
    }
    xa_check_heap();
    assert!(blocks >= 3900, "only {blocks} blocks allocated");
    assert_eq!(shared.free_leftovers(), 0);
}
