//! L11: the thread's heap pointer — one initial-exec TLS slot — and the two static heaps it
//! points to when the thread has no heap of its own.
//!
//! A new thread's slot starts pointing at [`EMPTY_HEAP`], whose every class points at an empty
//! span, so the fast path has no "initialised?" test: its first allocation simply misses and
//! the slow path installs a real heap. After its exit destructor ran, a thread's slot points at
//! [`DEAD_HEAP`]: it still allocates (through the registry's global heap) and its frees take
//! the remote path. Neither static heap is ever written.

use crate::heap::{Heap, StaticHeap};

/// The heap of a thread that has not allocated yet.
pub static EMPTY_HEAP: StaticHeap = StaticHeap::new();
/// The heap of a thread whose exit destructor already ran.
pub static DEAD_HEAP: StaticHeap = StaticHeap::new();

// The slot's initial value (copied into every new thread) is the address of EMPTY_HEAP.
core::arch::global_asm!(
    ".pushsection .tdata,\"awT\",@progbits",
    ".p2align 3",
    ".globl xalloc_tls_heap",
    ".hidden xalloc_tls_heap",
    ".type xalloc_tls_heap,@object",
    ".size xalloc_tls_heap, 8",
    "xalloc_tls_heap:",
    ".quad {empty}",
    ".popsection",
    empty = sym EMPTY_HEAP,
);

/// The calling thread's heap: `mov off(%rip),%rax; mov %fs:(%rax),%rax` — no call, no
/// `__tls_get_addr`.
#[inline(always)]
pub fn heap() -> *mut Heap {
    let h: *mut Heap;
    // SAFETY: reads the GOT entry holding our TLS slot's offset from the thread pointer, then
    // the slot itself; both are valid for every thread for the life of the process.
    unsafe {
        core::arch::asm!(
            "mov {off}, qword ptr [rip + xalloc_tls_heap@GOTTPOFF]",
            "mov {h}, qword ptr fs:[{off}]",
            off = out(reg) _,
            h = out(reg) h,
            options(nostack, readonly, preserves_flags, pure)
        );
    }
    h
}

/// Point the calling thread's slot at `h`.
pub fn set_heap(h: *mut Heap) {
    // SAFETY: writes this thread's own TLS slot (see `heap`).
    unsafe {
        core::arch::asm!(
            "mov {off}, qword ptr [rip + xalloc_tls_heap@GOTTPOFF]",
            "mov qword ptr fs:[{off}], {h}",
            off = out(reg) _,
            h = in(reg) h,
            options(nostack, preserves_flags)
        );
    }
}

/// Whether `h` is a heap of the thread's own (not one of the static empty heaps).
#[inline]
pub fn is_own(h: *mut Heap) -> bool {
    h != EMPTY_HEAP.get() && h != DEAD_HEAP.get()
}

/// The calling thread's own heap, if it has one.
#[inline]
pub fn own_heap() -> Option<*mut Heap> {
    let h = heap();
    if is_own(h) { Some(h) } else { None }
}
