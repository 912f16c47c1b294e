//! `libxalloc.so`: the `xalloc` crate's `#[no_mangle]` exports (the glibc malloc family, the C++
//! `operator new`/`delete` family, the `xa_*` API), linked as a C shared library.
//!
//! The crate is `#![no_std]`, and so is this library: it needs libc alone. A Rust standard
//! library would bring its panic and backtrace machinery (about 300 KiB of code, never run:
//! the allocator does not panic), `libgcc_s` and `libm`, all of them mapped into every program
//! the library is preloaded into: in a program that calls `malloc` once, those three mappings
//! held 756–816 KiB resident with the standard library and hold 188 KiB without.

// (`cargo clippy --all-targets` builds a test harness of it, with std: no handler there.)
#![cfg_attr(not(test), no_std)]

// Linked for its exports (the cdylib exports every `#[no_mangle]` function of the crates it
// links) and its constructor.
use xalloc_crate as _;

/// The allocator's code has no reachable panic (no call to a panic function survives in the
/// library); should one happen, it is a bug: say so and abort, formatting nothing.
#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    const MSG: &[u8] = b"xalloc: internal error (a Rust panic in the allocator)\n";
    // SAFETY: writes a static buffer to fd 2, then ends the process.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::abort()
    }
}

// The precompiled `core` names an unwinding personality in its unwind tables even though this
// library is built with `panic = "abort"`. No Rust frame here is ever unwound (C++ exceptions
// never cross one: see the crate's `cxx` module), so it is never called; defined hidden, so
// that it is not exported, and aborting, should it ever be.
#[cfg(not(test))]
core::arch::global_asm!(
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality,@function",
    "rust_eh_personality:",
    "jmp {abort}",
    ".size rust_eh_personality, . - rust_eh_personality",
    abort = sym libc::abort,
);
