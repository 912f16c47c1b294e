//! L15: the C++ `operator new` / `operator delete` family (the 20 replaceable forms of C++17:
//! plain and array; nothrow; sized delete; `std::align_val_t`), exported beside the C names of
//! [`crate::ffi`] under the `override` feature.
//!
//! A second export file, because the `new` forms are written in assembly: when memory runs out,
//! the standard wants the installed `new_handler` called in a loop and, if there is none,
//! `std::bad_alloc` thrown (the nothrow forms return null instead, also when the handler
//! throws). Both the handler and the throw unwind, and this crate is built with
//! `panic = "abort"`, under which an exception entering a Rust frame aborts the process. So
//! every frame an exception can cross is assembly with unwind information: the `new` entry
//! points call Rust only for work that cannot throw (allocating, looking up the C++ runtime,
//! building the exception object), call the handler themselves, and reach `__cxa_throw` with a
//! tail jump, so that it throws from the caller's frame. The nothrow loop catches what its
//! handler throws with a small personality routine of ours (a landing pad at one call site).
//!
//! No part of the C++ runtime is linked: `std::get_new_handler`, `__cxa_allocate_exception`,
//! `__cxa_throw`, `__cxa_begin_catch`/`__cxa_end_catch` and `std::bad_alloc`'s type info,
//! vtable and destructor are looked up with `dlsym` the first time memory runs out in `new`, so
//! a C program that loads this library never loads `libstdc++`. The exception object is built
//! by the Itanium C++ ABI that both libstdc++ and libc++abi follow: `std::bad_alloc` is one
//! vtable pointer, which points two words into its vtable (past the offset-to-top and the type
//! info pointer).
//!
//! The deletes are plain Rust: they never unwind. Sized deletes check the size against the
//! block ([`alloc::free_sized`]) and abort with a message on a mismatch.
//!
//! Fast path of `operator new(size)`: a push, a call of [`new_plain`] (which is `malloc`), a pop,
//! a test; about six instructions over `malloc` and no PLT hop (libstdc++'s `operator new`
//! costs a call through the PLT to `malloc` plus its own loop test).

use crate::alloc;
use crate::debug::LineBuf;
use crate::os;
use core::ffi::{CStr, c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------------------
// What the assembly calls. None of these unwinds.

/// `operator new(size)`'s first try: `malloc`.
extern "C" fn new_plain(size: usize) -> *mut u8 {
    alloc::malloc(size)
}

/// `operator new(size, align)`'s first try; null for an alignment that is not a power of two
/// (undefined in C++; libstdc++ throws `bad_alloc` too).
extern "C" fn new_aligned(size: usize, align: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        return ptr::null_mut();
    }
    alloc::aligned(align, size)
}

/// One round of the out-of-memory loop, returned in `rax:rdx`.
#[repr(C)]
struct Step {
    /// The block, if this try got one.
    p: *mut u8,
    /// Otherwise the `new_handler` to call before the next try, or 0: give up.
    handler: usize,
}

/// Try again (`align` 0: a plain `new`); on failure, the handler installed now.
extern "C" fn new_step(size: usize, align: usize) -> Step {
    let p = if align == 0 {
        alloc::malloc(size)
    } else {
        new_aligned(size, align)
    };
    if !p.is_null() || (align != 0 && !align.is_power_of_two()) {
        return Step { p, handler: 0 };
    }
    let rt = runtime();
    let handler = match rt[GET_NEW_HANDLER] {
        0 => 0,
        f => {
            // SAFETY: the C++ runtime's `std::get_new_handler`, a noexcept function of no
            // arguments returning a function pointer.
            let get: extern "C" fn() -> usize = unsafe { core::mem::transmute(f) };
            get()
        }
    };
    Step {
        p: ptr::null_mut(),
        handler,
    }
}

/// Build a `std::bad_alloc` to throw: writes the exception object, its type info, its
/// destructor and `__cxa_throw` to `out`. Aborts with a message when the process has no C++
/// runtime to throw with.
///
/// # Safety
/// `out` points to four writable words.
unsafe extern "C" fn new_prepare_throw(out: *mut [usize; 4]) {
    let rt = runtime();
    let needed = [
        ALLOCATE_EXCEPTION,
        THROW,
        BAD_ALLOC_TYPE,
        BAD_ALLOC_VTABLE,
        BAD_ALLOC_DTOR,
    ];
    if needed.iter().any(|&i| rt[i] == 0) {
        let mut l = LineBuf::new();
        l.push(b"xalloc: operator new(): out of memory, and no C++ runtime in the process ")
            .push(b"to throw std::bad_alloc with\n");
        l.write_to(2);
        os::abort();
    }
    // SAFETY: the C++ runtime's `__cxa_allocate_exception(size_t)`, which returns memory for
    // the object (or terminates).
    let allocate: extern "C" fn(usize) -> *mut usize =
        unsafe { core::mem::transmute(rt[ALLOCATE_EXCEPTION]) };
    let obj = allocate(core::mem::size_of::<usize>());
    // SAFETY: obj holds one word; a `std::bad_alloc` is its vtable pointer, two words into
    // the vtable (Itanium C++ ABI). `out` is writable (contract).
    unsafe {
        obj.write(rt[BAD_ALLOC_VTABLE] + 2 * core::mem::size_of::<usize>());
        out.write([
            obj as usize,
            rt[BAD_ALLOC_TYPE],
            rt[BAD_ALLOC_DTOR],
            rt[THROW],
        ]);
    }
}

/// The nothrow loop's landing pad: end the catch of exception `exc` (what `catch (...) {}`
/// does), which destroys it.
///
/// # Safety
/// `exc` is the exception the personality routine caught, not yet caught by anyone else.
unsafe extern "C" fn new_swallow(exc: *mut c_void) {
    let rt = runtime();
    if rt[BEGIN_CATCH] != 0 && rt[END_CATCH] != 0 {
        // SAFETY: the C++ runtime's `__cxa_begin_catch(void*)` and `__cxa_end_catch()`; exc
        // is a C++ exception in flight that the personality stopped in our frame.
        unsafe {
            let begin: extern "C" fn(*mut c_void) -> *mut c_void =
                core::mem::transmute(rt[BEGIN_CATCH]);
            let end: extern "C" fn() = core::mem::transmute(rt[END_CATCH]);
            begin(exc);
            end();
        }
    } else if rt[DELETE_EXCEPTION] != 0 {
        // SAFETY: the unwinder's `_Unwind_DeleteException(void*)`; exc is an exception in
        // flight that nobody else will handle.
        unsafe {
            let delete: extern "C" fn(*mut c_void) = core::mem::transmute(rt[DELETE_EXCEPTION]);
            delete(exc);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The C++ runtime, looked up when first needed.

const GET_NEW_HANDLER: usize = 0;
const ALLOCATE_EXCEPTION: usize = 1;
const THROW: usize = 2;
const BAD_ALLOC_TYPE: usize = 3;
const BAD_ALLOC_VTABLE: usize = 4;
const BAD_ALLOC_DTOR: usize = 5;
const BEGIN_CATCH: usize = 6;
const END_CATCH: usize = 7;
// The unwinder (libgcc_s, or LLVM's libunwind), which every C++ runtime loads; the library
// itself does not link it.
const GET_IP: usize = 8;
const SET_IP: usize = 9;
const SET_GR: usize = 10;
const GET_LSDA: usize = 11;
const DELETE_EXCEPTION: usize = 12;
const N_RUNTIME: usize = 13;

/// The symbols, in the order of the indexes above.
const NAMES: [&CStr; N_RUNTIME] = [
    c"_ZSt15get_new_handlerv",
    c"__cxa_allocate_exception",
    c"__cxa_throw",
    c"_ZTISt9bad_alloc",
    c"_ZTVSt9bad_alloc",
    c"_ZNSt9bad_allocD1Ev",
    c"__cxa_begin_catch",
    c"__cxa_end_catch",
    c"_Unwind_GetIP",
    c"_Unwind_SetIP",
    c"_Unwind_SetGR",
    c"_Unwind_GetLanguageSpecificData",
    c"_Unwind_DeleteException",
];

/// Their addresses once all were found (0 until then).
static RUNTIME: [AtomicUsize; N_RUNTIME] = [const { AtomicUsize::new(0) }; N_RUNTIME];

/// The C++ runtime's addresses and its unwinder's; a lookup (`dlsym`, with no lock of ours
/// held: this runs only when `new` is out of memory) until every one was found. Racing
/// lookups store the same values.
fn runtime() -> [usize; N_RUNTIME] {
    let mut rt = [0; N_RUNTIME];
    for (r, a) in rt.iter_mut().zip(RUNTIME.iter()) {
        *r = a.load(Ordering::Acquire);
    }
    if rt.iter().all(|&a| a != 0) {
        return rt;
    }
    for (r, name) in rt.iter_mut().zip(NAMES) {
        *r = os::dlsym_default(name) as usize;
    }
    if rt.iter().all(|&a| a != 0) {
        for (r, a) in rt.iter().zip(RUNTIME.iter()) {
            a.store(*r, Ordering::Release);
        }
    }
    rt
}

// ---------------------------------------------------------------------------------------------
// The personality routine of the nothrow loop.

/// `_Unwind_Reason_Code` values and `_Unwind_Action` bits (Itanium C++ ABI, level I).
const URC_FATAL_PHASE1_ERROR: c_int = 3;
const URC_HANDLER_FOUND: c_int = 6;
const URC_INSTALL_CONTEXT: c_int = 7;
const URC_CONTINUE_UNWIND: c_int = 8;
const UA_SEARCH_PHASE: c_int = 1;
const UA_HANDLER_FRAME: c_int = 4;
const UA_FORCE_UNWIND: c_int = 8;
/// DWARF register 0 (`rax`): where a landing pad finds the exception.
const EH_DATA_REG: c_int = 0;

/// The unwinder's functions the personality routine calls, as [`runtime`] found them: it ran
/// (and found them all) before the `new_handler` call whose exception this is, since that is
/// where the handler came from.
fn unwinder() -> Option<Unwinder> {
    let a = |i: usize| RUNTIME[i].load(Ordering::Acquire);
    if a(GET_IP) == 0 {
        return None;
    }
    // SAFETY: RUNTIME holds all the addresses or none; these are the unwinder's functions of
    // these C types (Itanium C++ ABI, level I).
    unsafe {
        Some(Unwinder {
            get_ip: core::mem::transmute::<usize, extern "C" fn(*mut c_void) -> usize>(a(GET_IP)),
            set_ip: core::mem::transmute::<usize, extern "C" fn(*mut c_void, usize)>(a(SET_IP)),
            set_gr: core::mem::transmute::<usize, extern "C" fn(*mut c_void, c_int, usize)>(a(
                SET_GR,
            )),
            lsda: core::mem::transmute::<usize, extern "C" fn(*mut c_void) -> *const i32>(a(
                GET_LSDA,
            )),
        })
    }
}

/// `_Unwind_GetIP`, `_Unwind_SetIP`, `_Unwind_SetGR`, `_Unwind_GetLanguageSpecificData`.
struct Unwinder {
    get_ip: extern "C" fn(*mut c_void) -> usize,
    set_ip: extern "C" fn(*mut c_void, usize),
    set_gr: extern "C" fn(*mut c_void, c_int, usize),
    lsda: extern "C" fn(*mut c_void) -> *const i32,
}

/// Whether an exception class names a C++ exception (libstdc++'s `GNUCC++` with its last byte
/// 0 or 1, libc++abi's `CLNGC++`).
fn is_cxx(class: u64) -> bool {
    let vendor = class >> 8;
    vendor == u64::from_be_bytes(*b"\0GNUCC++") || vendor == u64::from_be_bytes(*b"\0CLNGC++")
}

/// Personality routine of the nothrow out-of-memory loop: catches a C++ exception thrown by the
/// `new_handler` call (and nothing else, never a forced unwind) and lands on the pad that ends
/// the catch and returns null. Its "LSDA" is two 32-bit offsets, each relative to itself: the
/// return address of the handler call and the landing pad.
///
/// # Safety
/// Called by the unwinder with a valid context for a frame of the nothrow loop, whose LSDA is
/// the one described.
unsafe extern "C" fn nothrow_personality(
    version: c_int,
    actions: c_int,
    class: u64,
    exc: *mut c_void,
    ctx: *mut c_void,
) -> c_int {
    if version != 1 {
        return URC_FATAL_PHASE1_ERROR;
    }
    if actions & UA_FORCE_UNWIND != 0 || !is_cxx(class) {
        return URC_CONTINUE_UNWIND;
    }
    let Some(u) = unwinder() else {
        return URC_CONTINUE_UNWIND;
    };
    // ctx is the unwinder's context (contract).
    let lsda = (u.lsda)(ctx);
    if lsda.is_null() {
        return URC_CONTINUE_UNWIND;
    }
    // SAFETY: our LSDA holds two self-relative i32 offsets (see the assembly).
    let (after_call, pad) = unsafe {
        (
            (lsda as isize + lsda.read() as isize) as usize,
            (lsda.add(1) as isize + lsda.add(1).read() as isize) as usize,
        )
    };
    if (u.get_ip)(ctx) != after_call {
        return URC_CONTINUE_UNWIND;
    }
    if actions & UA_SEARCH_PHASE != 0 {
        return URC_HANDLER_FOUND;
    }
    if actions & UA_HANDLER_FRAME != 0 {
        // The unwinder's context, for the frame that handles the exception.
        (u.set_gr)(ctx, EH_DATA_REG, exc as usize);
        (u.set_ip)(ctx, pad);
        return URC_INSTALL_CONTEXT;
    }
    URC_CONTINUE_UNWIND
}

// ---------------------------------------------------------------------------------------------
// The `new` entry points: naked functions, so that the code and its unwind information
// (`.cfi_*`) are exactly what is written here.
//
// Each fast path saves its arguments, calls the Rust first try and returns the block, or jumps
// (stack as at entry, rdi = size, rsi = alignment or 0) to one of the two out-of-memory loops:
//
// - `oom_throw`: calls `new_step` until it gets a block, calling each handler it returns; with
//   no handler, builds the exception (`new_prepare_throw`), restores the entry stack and jumps
//   to `__cxa_throw`. A handler that throws unwinds through this frame to the caller.
// - `oom_nothrow`: the same loop returning null instead of throwing; an exception from the
//   handler is caught at its landing pad (through `nothrow_personality`, which finds the call
//   site and the pad in the loop's LSDA) and swallowed.
//
// Stack: entry rsp = 8 mod 16; the loops push two registers and reserve 40 (throwing) or 8
// (nothrow) bytes, so every call is made with rsp = 0 mod 16.

/// Generates an exported unaligned `new`: `malloc`, else the given out-of-memory loop.
macro_rules! new_plain_entry {
    ($(#[$m:meta])* $name:ident, $oom:ident) => {
        $(#[$m])*
        ///
        /// # Safety
        /// None beyond the C++ contract; `unsafe` because the body is assembly.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(size: usize) -> *mut u8 {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "push rdi",
                ".cfi_adjust_cfa_offset 8",
                "call {first}",
                "pop rdi",
                ".cfi_adjust_cfa_offset -8",
                "test rax, rax",
                "jz 2f",
                "ret",
                "2:",
                "xor esi, esi",
                "jmp {oom}",
                ".cfi_endproc",
                first = sym new_plain,
                oom = sym $oom,
            )
        }
    };
}

/// Generates an exported aligned `new`: `aligned`, else the given out-of-memory loop.
macro_rules! new_aligned_entry {
    ($(#[$m:meta])* $name:ident, $oom:ident) => {
        $(#[$m])*
        ///
        /// # Safety
        /// None beyond the C++ contract; `unsafe` because the body is assembly.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(size: usize, align: usize) -> *mut u8 {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "push rdi",
                ".cfi_adjust_cfa_offset 8",
                "push rsi",
                ".cfi_adjust_cfa_offset 8",
                "sub rsp, 8",
                ".cfi_adjust_cfa_offset 8",
                "call {first}",
                "add rsp, 8",
                ".cfi_adjust_cfa_offset -8",
                "pop rsi",
                ".cfi_adjust_cfa_offset -8",
                "pop rdi",
                ".cfi_adjust_cfa_offset -8",
                "test rax, rax",
                "jz {oom}",
                "ret",
                ".cfi_endproc",
                first = sym new_aligned,
                oom = sym $oom,
            )
        }
    };
}

new_plain_entry!(
    /// `operator new(size_t)`.
    _Znwm, oom_throw
);
new_plain_entry!(
    /// `operator new[](size_t)`.
    _Znam, oom_throw
);
new_plain_entry!(
    /// `operator new(size_t, const std::nothrow_t&)` (the second argument is not read).
    _ZnwmRKSt9nothrow_t, oom_nothrow
);
new_plain_entry!(
    /// `operator new[](size_t, const std::nothrow_t&)`.
    _ZnamRKSt9nothrow_t, oom_nothrow
);
new_aligned_entry!(
    /// `operator new(size_t, std::align_val_t)`.
    _ZnwmSt11align_val_t, oom_throw
);
new_aligned_entry!(
    /// `operator new[](size_t, std::align_val_t)`.
    _ZnamSt11align_val_t, oom_throw
);
new_aligned_entry!(
    /// `operator new(size_t, std::align_val_t, const std::nothrow_t&)`.
    _ZnwmSt11align_val_tRKSt9nothrow_t, oom_nothrow
);
new_aligned_entry!(
    /// `operator new[](size_t, std::align_val_t, const std::nothrow_t&)`.
    _ZnamSt11align_val_tRKSt9nothrow_t, oom_nothrow
);

/// The throwing out-of-memory loop (see above). Entered by a jump from a `new` entry point.
///
/// # Safety
/// Only for those jumps: rdi = size, rsi = alignment or 0, the stack as at the entry point.
#[unsafe(naked)]
unsafe extern "C" fn oom_throw() {
    core::arch::naked_asm!(
        ".cfi_startproc",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbx, -16",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r12, -24",
        "sub rsp, 40",
        ".cfi_adjust_cfa_offset 40",
        "mov rbx, rdi",
        "mov r12, rsi",
        "3:",
        "mov rdi, rbx",
        "mov rsi, r12",
        "call {step}",
        "test rax, rax",
        "jnz 4f",
        "test rdx, rdx",
        "jz 5f",
        "call rdx",
        "jmp 3b",
        "4:",
        ".cfi_remember_state",
        "add rsp, 40",
        ".cfi_adjust_cfa_offset -40",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbx",
        "ret",
        ".cfi_restore_state",
        "5:",
        "mov rdi, rsp",
        "call {prepare}",
        "mov rdi, [rsp]",
        "mov rsi, [rsp + 8]",
        "mov rdx, [rsp + 16]",
        "mov rax, [rsp + 24]",
        "add rsp, 40",
        ".cfi_adjust_cfa_offset -40",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbx",
        "jmp rax",
        ".cfi_endproc",
        step = sym new_step,
        prepare = sym new_prepare_throw,
    )
}

/// The nothrow out-of-memory loop (see above), with its LSDA (two self-relative offsets: the
/// return address of the handler call, the landing pad) and the personality's address for the
/// indirect encoding of `.cfi_personality`. Entered by a jump from a nothrow `new`.
///
/// # Safety
/// Only for those jumps: rdi = size, rsi = alignment or 0, the stack as at the entry point.
#[unsafe(naked)]
#[allow(named_asm_labels)]
unsafe extern "C" fn oom_nothrow() -> *mut u8 {
    core::arch::naked_asm!(
        ".cfi_startproc",
        ".cfi_personality 0x9b, .Lxalloc_nothrow_personality",
        ".cfi_lsda 0x1b, .Lxalloc_nothrow_lsda",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbx, -16",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r12, -24",
        "sub rsp, 8",
        ".cfi_adjust_cfa_offset 8",
        "mov rbx, rdi",
        "mov r12, rsi",
        "6:",
        "mov rdi, rbx",
        "mov rsi, r12",
        "call {step}",
        "test rax, rax",
        "jnz 7f",
        "test rdx, rdx",
        "jz 7f",
        "call rdx",
        ".Lxalloc_nothrow_after_call:",
        "jmp 6b",
        ".Lxalloc_nothrow_pad:",
        "mov rdi, rax",
        "call {swallow}",
        "xor eax, eax",
        "7:",
        "add rsp, 8",
        ".cfi_adjust_cfa_offset -8",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbx",
        "ret",
        ".cfi_endproc",
        ".pushsection .rodata.xalloc_nothrow_lsda,\"a\",@progbits",
        ".p2align 2",
        ".Lxalloc_nothrow_lsda:",
        ".long .Lxalloc_nothrow_after_call - .",
        ".long .Lxalloc_nothrow_pad - .",
        ".popsection",
        ".pushsection .data.rel.ro.xalloc_nothrow_personality,\"aw\",@progbits",
        ".p2align 3",
        ".Lxalloc_nothrow_personality:",
        ".quad {personality}",
        ".popsection",
        step = sym new_step,
        swallow = sym new_swallow,
        personality = sym nothrow_personality,
    )
}

// ---------------------------------------------------------------------------------------------
// The deletes.

/// Generates `operator delete` exports: each frees its pointer with the given expression.
macro_rules! export_delete {
    ($( $(#[$m:meta])* fn $name:ident ( $($a:ident : $t:ty),* ) = $body:expr ; )*) => {
        $(
            $(#[$m])*
            ///
            /// # Safety
            /// The C++ contract: `p` is null or a live block from the matching `operator new`
            /// (with the same size and alignment, for the forms that take them).
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn $name( $($a : $t),* ) {
                // SAFETY: the C++ contract of this operator; misuse we can detect aborts with a
                // message.
                unsafe { $body }
            }
        )*
    };
}

export_delete! {
    /// `operator delete(void*)`.
    fn _ZdlPv(p: *mut u8) = alloc::free(p);
    /// `operator delete[](void*)`.
    fn _ZdaPv(p: *mut u8) = alloc::free(p);
    /// `operator delete(void*, size_t)`: checks the size.
    fn _ZdlPvm(p: *mut u8, size: usize) = alloc::free_sized(p, size, 0);
    /// `operator delete[](void*, size_t)`: checks the size.
    fn _ZdaPvm(p: *mut u8, size: usize) = alloc::free_sized(p, size, 0);
    /// `operator delete(void*, const std::nothrow_t&)`.
    fn _ZdlPvRKSt9nothrow_t(p: *mut u8, _nt: *const c_void) = alloc::free(p);
    /// `operator delete[](void*, const std::nothrow_t&)`.
    fn _ZdaPvRKSt9nothrow_t(p: *mut u8, _nt: *const c_void) = alloc::free(p);
    /// `operator delete(void*, std::align_val_t)`.
    fn _ZdlPvSt11align_val_t(p: *mut u8, _align: usize) = alloc::free(p);
    /// `operator delete[](void*, std::align_val_t)`.
    fn _ZdaPvSt11align_val_t(p: *mut u8, _align: usize) = alloc::free(p);
    /// `operator delete(void*, size_t, std::align_val_t)`: checks the size.
    fn _ZdlPvmSt11align_val_t(p: *mut u8, size: usize, align: usize) =
        alloc::free_sized(p, size, align);
    /// `operator delete[](void*, size_t, std::align_val_t)`: checks the size.
    fn _ZdaPvmSt11align_val_t(p: *mut u8, size: usize, align: usize) =
        alloc::free_sized(p, size, align);
    /// `operator delete(void*, std::align_val_t, const std::nothrow_t&)`.
    fn _ZdlPvSt11align_val_tRKSt9nothrow_t(p: *mut u8, _align: usize, _nt: *const c_void) =
        alloc::free(p);
    /// `operator delete[](void*, std::align_val_t, const std::nothrow_t&)`.
    fn _ZdaPvSt11align_val_tRKSt9nothrow_t(p: *mut u8, _align: usize, _nt: *const c_void) =
        alloc::free(p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_cxx_exception_classes() {
        assert!(is_cxx(u64::from_be_bytes(*b"GNUCC++\0")));
        assert!(is_cxx(u64::from_be_bytes(*b"GNUCC++\x01")));
        assert!(is_cxx(u64::from_be_bytes(*b"CLNGC++\0")));
        assert!(!is_cxx(u64::from_be_bytes(*b"MOZ\0RUST")));
    }
}
