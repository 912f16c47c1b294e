// Multi-threaded allocation churn through Rust's System allocator (that is,
// malloc/free/realloc/posix_memalign), synchronised with parking_lot.
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::thread;

include!(concat!(env!("OUT_DIR"), "/table.rs"));

fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[repr(align(64))]
struct Aligned([u8; 192]);

fn main() {
    let shared: Arc<Mutex<BTreeMap<u64, String>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let table: Arc<RwLock<HashMap<String, u64>>> = Arc::new(RwLock::new(
        TABLE.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
    ));
    let queue = Arc::new((Mutex::new(VecDeque::<Vec<u8>>::new()), Condvar::new()));
    let nthreads = 4u64;

    // Producers hand buffers to a consumer thread, which frees them:
    // memory allocated on one thread and freed on another.
    let consumer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            let (lock, cv) = &*queue;
            // order-independent digest: arrival order depends on scheduling
            let mut h = 0u64;
            let mut got = 0u64;
            loop {
                let mut q = lock.lock();
                while q.is_empty() {
                    cv.wait(&mut q);
                }
                let buf = q.pop_front().unwrap();
                drop(q);
                if buf.is_empty() {
                    break;
                }
                h = h.wrapping_add(fnv(&buf, 0xcbf2_9ce4_8422_2325));
                got += 1;
            }
            (got, h)
        })
    };

    let workers: Vec<_> = (0..nthreads)
        .map(|t| {
            let shared = Arc::clone(&shared);
            let table = Arc::clone(&table);
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                let mut keep: Vec<Box<[u8]>> = Vec::new();
                let mut aligned: Vec<Box<Aligned>> = Vec::new();
                let mut acc = 0u64;
                for i in 0..60_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let size = match x % 100 {
                        0..=69 => (x >> 8) % 128 + 1,
                        70..=94 => (x >> 8) % 4096 + 1,
                        _ => (x >> 8) % (1 << 20) + 1,
                    } as usize;
                    let mut v = vec![(i % 251) as u8; size];
                    if i % 3 == 0 {
                        v.extend_from_slice(&[1, 2, 3]);
                        v.shrink_to_fit();
                    }
                    acc = acc.wrapping_add(v.iter().map(|&b| u64::from(b)).sum::<u64>());
                    keep.push(v.into_boxed_slice());
                    if keep.len() > 300 {
                        let idx = (x as usize >> 3) % keep.len();
                        keep.swap_remove(idx);
                    }
                    if i % 7 == 0 {
                        aligned.push(Box::new(Aligned([t as u8; 192])));
                        if aligned.len() > 100 {
                            aligned.drain(..50);
                        }
                    }
                    if i % 100 == 0 {
                        let s = format!("{t}-{i}-{}", "y".repeat((x % 300) as usize));
                        shared.lock().insert(t * 1_000_000 + i, s);
                        let (lock, cv) = &*queue;
                        lock.lock()
                            .push_back(vec![t as u8; (x % 5000 + 1) as usize]);
                        cv.notify_one();
                    }
                    if i % 500 == 0 {
                        // TABLE's entries never change; other threads only add keys
                        let (word, n) = TABLE[(i as usize / 500) % TABLE.len()];
                        acc = acc.wrapping_add(table.read().get(word).copied().unwrap_or(0) ^ n);
                    }
                    if i % 5000 == 0 {
                        table.write().insert(format!("t{t}i{i}"), i);
                    }
                }
                assert!(aligned
                    .iter()
                    .all(|a| (&**a as *const Aligned as usize) % 64 == 0 && a.0[191] == t as u8));
                acc
            })
        })
        .collect();

    let mut total = 0u64;
    for w in workers {
        total = total.wrapping_add(w.join().unwrap());
    }
    {
        let (lock, cv) = &*queue;
        lock.lock().push_back(Vec::new());
        cv.notify_one();
    }
    let (got, qhash) = consumer.join().unwrap();
    let map = shared.lock();
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (k, v) in map.iter() {
        h = fnv(&k.to_le_bytes(), fnv(v.as_bytes(), h));
    }
    println!("workers {total:016x}");
    println!("queue {got} {qhash:016x}");
    println!("shared {} {h:016x}", map.len());
    println!("table {}", table.read().len());
}
