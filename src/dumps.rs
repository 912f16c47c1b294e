//! L14: when the profiler and the heap map write their dumps — the options read at load time,
//! the dumps at exit, on `XALLOC_DUMP_SIGNAL` and on request (`xa_prof_dump`, `xa_heap_map`).
//!
//! A signal handler cannot write a dump itself: it may have interrupted this very thread inside
//! the allocator, holding the locks a dump needs. So the handler only wakes a helper thread
//! (started at load time when the option is set), which writes the dumps with the usual locks.

use crate::config;
use crate::heapmap;
use crate::os;
use crate::profile;
use crate::textout;
use crate::unwind;
use core::ffi::CStr;
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// A handle on the directory the program started in, for relative file names; -1: none.
static START_DIR: AtomicI32 = AtomicI32::new(-1);
/// Set by the signal handler, cleared by the helper thread.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Create `name` (with `%p` expanded) from the starting directory: its descriptor or an errno.
fn create(name: &[u8]) -> Result<i32, i32> {
    let mut path = [0u8; 4096];
    let Some(n) = textout::expand_pid(name, os::pid(), &mut path) else {
        return Err(libc::ENAMETOOLONG);
    };
    let dir = match START_DIR.load(Ordering::Relaxed) {
        -1 => libc::AT_FDCWD,
        d => d,
    };
    let Ok(path) = CStr::from_bytes_with_nul(&path[..=n]) else {
        return Err(libc::EINVAL);
    };
    os::create_file(dir, path)
}

/// Write the heap profile to `name`: 0, or an errno (`ENOENT`-style failures of the file,
/// `ENODEV` when the profiler is off).
pub fn prof_dump(name: Option<&[u8]>) -> i32 {
    if !profile::enabled() {
        return libc::ENODEV;
    }
    let name = name
        .or(config::get().prof_file)
        .unwrap_or(b"xalloc.%p.heap");
    match create(name) {
        Ok(fd) => {
            profile::dump(fd);
            os::close(fd);
            0
        }
        Err(e) => e,
    }
}

/// Write the heap map to `name` (default: `XALLOC_HEAPMAP_FILE`): 0, or an errno (`EINVAL`
/// when no name is given or set).
pub fn heap_map(name: Option<&[u8]>) -> i32 {
    let Some(name) = name.or(config::get().heapmap_file) else {
        return libc::EINVAL;
    };
    match create(name) {
        Ok(fd) => {
            heapmap::dump(fd);
            os::close(fd);
            0
        }
        Err(e) => e,
    }
}

/// The dumps the options ask for (at exit and on the signal).
fn dump_configured() {
    if profile::enabled() {
        prof_dump(None);
    }
    if config::get().heapmap_file.is_some() {
        heap_map(None);
    }
}

extern "C" fn at_exit() {
    dump_configured();
}

extern "C" fn on_signal(_sig: i32) {
    let _e = os::ErrnoGuard::new();
    PENDING.store(1, Ordering::Release);
    os::futex_wake_one(&PENDING);
}

extern "C" fn helper(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        os::futex_wait(&PENDING, 0);
        if PENDING.swap(0, Ordering::Acquire) != 0 {
            dump_configured();
        }
    }
}

/// At load time: turn the profiler on, register the exit dumps and the signal, as the options
/// say.
extern "C" fn setup() {
    let c = config::get();
    if !c.prof && c.heapmap_file.is_none() {
        return;
    }
    if let Some(d) = os::cwd_handle() {
        START_DIR.store(d, Ordering::Relaxed);
    }
    if c.prof {
        // Leave the allocator's own frames out of stacks when it is a library of its own; linked
        // into the program, its code cannot be told apart by address (the reader drops its
        // frames by name).
        let own = match os::code_range_of(setup as *const () as usize) {
            Some((lo, hi, false)) => (lo, hi),
            _ => (0, 0),
        };
        // The profiler first: a failed `dlsym` allocates (its error string), and the thread's
        // heap made for that must already see the profiler on, or its small blocks would
        // never be sampled.
        profile::enable(c.prof_rate as u64, own);
        let find = os::dlsym_default(c"_dl_find_object");
        let libgcc = if find.is_null() {
            [
                os::dlsym_default(c"_Unwind_Backtrace"),
                os::dlsym_default(c"_Unwind_GetIP"),
            ]
        } else {
            [core::ptr::null_mut(); 2]
        };
        unwind::init(find, libgcc);
    }
    os::at_exit(at_exit);
    if c.dump_signal != 0 && os::spawn_detached(helper) {
        os::on_signal(c.dump_signal as i32, on_signal);
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static SETUP: extern "C" fn() = setup;
