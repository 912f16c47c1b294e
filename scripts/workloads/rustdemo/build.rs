// Build script: runs on the build machine under cargo (and so under the
// preloaded allocator). Generates a lookup table with many allocations.
use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() {
    let mut words: BTreeMap<String, u64> = BTreeMap::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..200_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let w: String = (0..(x % 8 + 1))
            .map(|k| (b'a' + ((x >> (k * 5)) % 26) as u8) as char)
            .collect();
        *words.entry(w).or_default() += i;
    }
    let mut src = String::from("pub const TABLE: &[(&str, u64)] = &[\n");
    for (w, n) in words.iter().take(2000) {
        writeln!(src, "    ({w:?}, {n}),").unwrap();
    }
    src.push_str("];\n");
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("table.rs");
    fs::write(out, src).unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
