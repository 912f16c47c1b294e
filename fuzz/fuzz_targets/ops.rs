//! Fuzz target: the input bytes decode to an xalloc op sequence (`xalloc_testkit::decode`),
//! which runs against the testkit's shadow model; any model violation panics, which libFuzzer
//! reports as a crash. Set `XALLOC_OPSEQ_TRACE=1` to print each op and each new block to
//! stderr (for reading a reproducer: `cargo fuzz run ops --sanitizer none <file>`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use xalloc_testkit::{Config, run_bytes};

fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("XALLOC_OPSEQ_TRACE").is_some_and(|v| v != "0"))
}

fuzz_target!(|data: &[u8]| {
    // libFuzzer runs the target on one thread and nothing else allocates meanwhile, so the
    // checks that need an exclusive allocator are on.
    let cfg = Config {
        exclusive: true,
        trace: trace(),
        ..Config::default()
    };
    run_bytes(cfg, data);
});
