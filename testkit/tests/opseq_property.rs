//! Deterministic property tests over the testkit's op-sequence engine: fixed seeds expand to
//! pseudo-random byte strings, which decode to op sequences run against the shadow model — on
//! one thread, and on three threads that pass live blocks to each other (and to the main thread
//! after they exit) to be verified, resized and freed there, all of them sharing one model.
//! Any model violation panics, naming the op that failed. Inputs on which the fuzzer once
//! failed (`fuzz/regressions/ops/`) are replayed too.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use xalloc_testkit::{self as opseq, Config, Engine, Handoff, Op, SharedModel, Summary};

/// The tests run one at a time: the single-threaded one claims `Config::exclusive`.
static SERIAL: Mutex<()> = Mutex::new(());

/// `len` pseudo-random bytes from `seed` (splitmix64).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut s = seed;
    while out.len() < len {
        s = opseq::mix64(s);
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn exclusive() -> Config {
    Config {
        exclusive: true,
        ..Config::default()
    }
}

#[test]
fn seeded_sequences_single_thread() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    let mut total = Summary::default();
    for seed in 0..48u64 {
        let data = bytes(0x5eed_0000 + seed, 512 + (seed as usize % 7) * 512);
        let ops = opseq::decode(&data);
        assert!(!ops.is_empty());
        total += opseq::run_with(exclusive(), &ops);
    }
    eprintln!("single thread: {total:?} in {:?}", t.elapsed());
    assert!(total.allocations > 1000 && total.bytes_verified > 0);
}

/// Every class boundary, by hand: each class size -1/0/+1 allocated, grown and shrunk across
/// its neighbours, freed in an interleaved order; then the page and huge borders.
#[test]
fn class_and_path_boundaries() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut ops = Vec::new();
    let mut slot = 0u8;
    for &c in xalloc::CLASS_SIZE.iter() {
        let c = c as usize;
        for size in [c - 1, c, c + 1] {
            ops.push(Op::Malloc { slot, size });
            ops.push(Op::Realloc {
                slot,
                size: opseq::NewSize::Grow(1),
            });
            ops.push(Op::Realloc {
                slot,
                size: opseq::NewSize::Shrink(2),
            });
            ops.push(Op::AlignedAlloc {
                slot: slot.wrapping_add(128),
                align_log2: (c.trailing_zeros() as u8).min(15),
                size,
            });
            slot = slot.wrapping_add(1);
        }
    }
    ops.push(Op::CheckHeap);
    ops.push(Op::FreeRange {
        first: 0,
        count: 255,
        stride: 3,
    });
    const MAX_RUN: usize = xalloc::MEDIUM_LIMIT;
    for (i, size) in [
        32768 - 1,
        32768,
        32768 + 1,
        40960 - 1,
        40960,
        40960 + 1,
        MAX_RUN - 4096,
        MAX_RUN,
        MAX_RUN + 1,
        33 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let slot = i as u8;
        ops.push(Op::Calloc { slot, n: 1, size });
        ops.push(Op::Realloc {
            slot,
            size: opseq::NewSize::Double,
        });
        ops.push(Op::Realloc {
            slot,
            size: opseq::NewSize::Abs(size),
        });
        ops.push(Op::Inspect { slot });
        ops.push(Op::Trim);
        ops.push(Op::Free { slot });
    }
    ops.push(Op::Stats);
    let s = opseq::run_with(exclusive(), &ops);
    assert_eq!(s.ops, ops.len());
}

/// Every input the fuzzer once crashed on (`fuzz/regressions/ops/`), replayed as the fuzz
/// target runs it.
#[test]
fn fuzz_regressions() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/regressions/ops");
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {dir}");
    for f in files {
        let data = std::fs::read(&f).unwrap();
        eprintln!("replaying {}: {:?}", f.display(), opseq::decode(&data));
        opseq::run_bytes(exclusive(), &data);
    }
}

/// Messages between the worker threads.
enum Msg {
    /// Verify and free at once.
    Free(Handoff),
    /// Take into the receiving engine at this slot (later ops may resize or free it).
    Adopt(Handoff, u8),
}

fn handle(e: &mut Engine, m: Msg, received: &mut u64) {
    *received += 1;
    match m {
        Msg::Free(h) => {
            h.free();
        }
        Msg::Adopt(h, slot) => e.take_in(h, slot),
    }
}

fn worker(
    id: u64,
    rounds: u64,
    shared: Arc<SharedModel>,
    to_next: mpsc::Sender<Msg>,
    from_prev: mpsc::Receiver<Msg>,
    to_main: mpsc::Sender<Handoff>,
) -> Summary {
    let mut total = Summary::default();
    let mut received = 0u64;
    for round in 0..rounds {
        let seed = 0xc0ff_ee00 + id * 1000 + round;
        let ops = opseq::decode(&bytes(seed, 1536));
        let mut e = Engine::with_shared(
            Config {
                max_live_bytes: 128 << 20,
                ..Config::default()
            },
            Arc::clone(&shared),
        );
        for (i, op) in ops.iter().enumerate() {
            e.apply(op);
            let r = opseq::mix64(seed ^ i as u64);
            if r % 8 == 0 {
                let slot = (r >> 8) as u8;
                // A send fails only when the receiving thread has already failed; the block
                // then leaks, and the test fails anyway.
                if let Some(h) = e.hand_off(slot) {
                    match (r >> 16) % 4 {
                        0 => {
                            let _ = to_next.send(Msg::Adopt(h, (r >> 24) as u8));
                        }
                        // Kept by the main thread until every worker has exited.
                        1 => {
                            let _ = to_main.send(h);
                        }
                        _ => {
                            let _ = to_next.send(Msg::Free(h));
                        }
                    }
                }
            }
            if r % 4 == 1 {
                while let Ok(m) = from_prev.try_recv() {
                    handle(&mut e, m, &mut received);
                }
            }
        }
        // Leave a sixteenth of the slots for the next thread to free; `finish` frees the rest.
        for slot in 0..=u8::MAX {
            if u64::from(slot) % 16 == round % 16 {
                if let Some(h) = e.hand_off(slot) {
                    let _ = to_next.send(Msg::Free(h));
                }
            }
        }
        total += e.finish();
    }
    // No more sends from here; take what the previous thread still sends until it is done.
    drop(to_next);
    let mut e = Engine::with_shared(Config::default(), shared);
    while let Ok(m) = from_prev.recv() {
        handle(&mut e, m, &mut received);
    }
    total += e.finish();
    assert!(received > 0, "thread {id} received nothing");
    total
}

#[test]
fn seeded_sequences_three_threads_passing_blocks() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = Instant::now();
    const N: usize = 3;
    let mut total = Summary::default();
    let mut kept: Vec<Handoff> = Vec::new();
    // One model for every engine of both generations: blocks of different threads, and blocks
    // in transit, must not overlap either.
    let shared = Arc::new(SharedModel::new());
    // Two generations of threads: the second adopts the heaps the first left behind.
    for generation in 0..2u64 {
        let (to_main, main_rx) = mpsc::channel::<Handoff>();
        let mut txs = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..N {
            let (tx, rx) = mpsc::channel::<Msg>();
            txs.push(tx);
            rxs.push(rx);
        }
        let mut handles = Vec::new();
        for (i, rx) in rxs.into_iter().enumerate() {
            let tx = txs[(i + 1) % N].clone();
            let to_main = to_main.clone();
            let id = generation * N as u64 + i as u64;
            let shared = Arc::clone(&shared);
            handles.push(std::thread::spawn(move || {
                worker(id, 6, shared, tx, rx, to_main)
            }));
        }
        drop(txs);
        drop(to_main);
        for h in handles {
            total += h
                .join()
                .expect("a worker failed (its panic message is above)");
        }
        // Every worker of this generation has exited: free half of what they left with the
        // main thread now (their heaps are abandoned), keep the rest for the next generation.
        let mut left: Vec<Handoff> = main_rx.iter().collect();
        let half = left.len() / 2;
        for h in left.drain(..half) {
            h.free();
        }
        kept.extend(left);
        xalloc::ffi::xa_check_heap();
    }
    assert!(!kept.is_empty());
    for h in kept {
        h.free();
    }
    // Every block was received and freed: none is left in the model.
    assert_eq!(shared.free_leftovers(), 0);
    xalloc::ffi::xa_check_heap();
    eprintln!("three threads: {total:?} in {:?}", t.elapsed());
    assert!(total.allocations > 1000);
}
