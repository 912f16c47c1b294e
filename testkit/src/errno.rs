//! The calling thread's `errno`, set to a sentinel before each call whose `errno` behaviour is
//! checked and read back after it.

/// The value `errno` is set to before each checked call; no allocator call sets this one.
pub(crate) const SENTINEL: i32 = 0x7eed;

/// Set this thread's `errno`.
pub(crate) fn set(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() = e }
}

/// This thread's `errno`.
pub(crate) fn get() -> i32 {
    // SAFETY: as in `set`.
    unsafe { *libc::__errno_location() }
}
