//! L0: the call stack of the running thread, as return addresses, through the C++ ABI's
//! unwinder (`_Unwind_Backtrace`, libgcc_s, which the Rust standard library links already).
//!
//! The unwinder reads `.eh_frame` call-frame information, so it walks code built without frame
//! pointers (every distribution binary) as well as with them. With glibc ≥ 2.35 it finds a
//! code address's object through `_dl_find_object`, without the loader's lock, and it never
//! allocates: safe to call from inside `malloc`, with no lock of ours held (the profiler calls
//! it before taking its own).

use core::ffi::{c_int, c_void};

unsafe extern "C" {
    fn _Unwind_Backtrace(
        trace: extern "C" fn(ctx: *mut c_void, arg: *mut c_void) -> c_int,
        arg: *mut c_void,
    ) -> c_int;
    fn _Unwind_GetIP(ctx: *mut c_void) -> usize;
}

/// `_Unwind_Reason_Code`: go on, and stop.
const URC_NO_REASON: c_int = 0;
const URC_END_OF_STACK: c_int = 5;

struct Walk<'a> {
    out: &'a mut [usize],
    len: usize,
    /// Leading frames inside `[skip.0, skip.1)` are left out.
    skip: (usize, usize),
}

extern "C" fn step(ctx: *mut c_void, arg: *mut c_void) -> c_int {
    // SAFETY: arg is the `Walk` that `backtrace` passes, alive for the whole walk; ctx is the
    // unwinder's context for this frame.
    let (w, ip) = unsafe { (&mut *(arg as *mut Walk), _Unwind_GetIP(ctx)) };
    if ip == 0 {
        return URC_END_OF_STACK;
    }
    if w.len == 0 && w.skip.0 <= ip && ip < w.skip.1 {
        return URC_NO_REASON;
    }
    w.out[w.len] = ip;
    w.len += 1;
    if w.len == w.out.len() {
        URC_END_OF_STACK
    } else {
        URC_NO_REASON
    }
}

/// Fill `out` with the return addresses of the calling thread's frames, innermost first,
/// leaving out the leading ones that lie in `[skip.0, skip.1)` (the allocator's own code).
/// Returns how many were written.
pub fn backtrace(out: &mut [usize], skip: (usize, usize)) -> usize {
    if out.is_empty() {
        return 0;
    }
    let mut w = Walk { out, len: 0, skip };
    // SAFETY: `step` matches the callback type and only touches `w`, which outlives the call.
    unsafe { _Unwind_Backtrace(step, &mut w as *mut Walk as *mut c_void) };
    w.len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn inner(out: &mut [usize]) -> usize {
        backtrace(out, (0, 0))
    }

    #[test]
    fn walks_the_callers() {
        let mut out = [0usize; 64];
        let n = inner(&mut out);
        // this test, the test harness and the thread start are all on the stack
        assert!(n >= 4, "{n} frames");
        assert!(out[..n].iter().all(|&a| a != 0));
        // a skip range covering everything leaves nothing
        let mut few = [0usize; 2];
        assert_eq!(backtrace(&mut few, (0, usize::MAX)), 0);
        assert_eq!(backtrace(&mut few, (0, 0)), 2);
    }
}
