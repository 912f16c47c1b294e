//! L0: the call stack of the running thread, as return addresses — a small DWARF call-frame
//! unwinder for x86-64, with a cache, and the C++ ABI's unwinder as a fallback.
//!
//! # Why not only `_Unwind_Backtrace`
//! libgcc's `_Unwind_Backtrace` interprets the call-frame information of every frame anew
//! (about two thousand instructions a frame), and before it looks an address up through
//! `_dl_find_object` it searches the objects registered with `__register_frame`, under a mutex
//! it holds while it calls `malloc` to sort them: a sample taken inside that `malloc` would wait
//! for itself. The walk here takes no lock and never allocates: `_dl_find_object` (glibc 2.35,
//! lock-free and async-signal-safe) finds an address's `.eh_frame_hdr`, a binary search finds
//! its FDE, and the CIE and FDE programs run up to the address. What they say about the frame
//! — where the CFA is (`rsp` or `rbp` plus an offset), where `rbp` was saved — is kept in a
//! table of return addresses, so a walk over code seen before costs a few instructions a frame.
//! Distribution binaries have this information (`.eh_frame`) even when built without frame
//! pointers.
//!
//! Frames the walk cannot describe (a CFA given by an expression, as in signal trampolines and
//! PLT stubs; registers other than `rsp`/`rbp` holding the CFA; an address outside every object)
//! end the stack there. Where `_dl_find_object` does not exist (glibc before 2.35) the stack comes
//! from `_Unwind_Backtrace` instead, if the program loaded libgcc (the library does not link it).
//!
//! Only memory the call-frame information names is read: the return address just below each
//! CFA, and a saved `rbp`. A CFA must lie above the previous one and within 1 MiB of it, and at
//! most [`MAX_DEPTH`] frames are walked.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// libgcc's `_Unwind_Backtrace(trace, arg)`.
type UnwindBacktrace = unsafe extern "C" fn(
    trace: extern "C" fn(ctx: *mut c_void, arg: *mut c_void) -> c_int,
    arg: *mut c_void,
) -> c_int;
/// libgcc's `_Unwind_GetIP(ctx)`.
type UnwindGetIp = unsafe extern "C" fn(ctx: *mut c_void) -> usize;

/// Frames walked at most (kept ones and skipped ones).
pub const MAX_DEPTH: usize = 256;

/// glibc's `struct dl_find_object` (`<dlfcn.h>`, 2.35).
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: *mut c_void,
    map_end: *mut c_void,
    link_map: *mut c_void,
    eh_frame: *mut c_void,
    reserved: [u64; 7],
}

type FindObject = unsafe extern "C" fn(pc: *mut c_void, out: *mut DlFindObject) -> c_int;

/// `_dl_find_object`, found by [`init`]; 0: not available.
static FIND_OBJECT: AtomicUsize = AtomicUsize::new(0);

/// libgcc's `_Unwind_Backtrace` and `_Unwind_GetIP`, found by [`init`] (the library does not
/// link libgcc: they are there when the program loaded it, as every C++ program does); 0: not
/// available.
static LIBGCC: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Use `find` (the address of glibc's `_dl_find_object`, or null) for the walks, and `libgcc`
/// (the addresses of `_Unwind_Backtrace` and `_Unwind_GetIP`, or nulls) where it is missing.
/// Set-up only.
pub fn init(find: *mut c_void, libgcc: [*mut c_void; 2]) {
    if !libgcc[0].is_null() && !libgcc[1].is_null() {
        LIBGCC[1].store(libgcc[1] as usize, Ordering::Release);
        LIBGCC[0].store(libgcc[0] as usize, Ordering::Release);
    }
    FIND_OBJECT.store(find as usize, Ordering::Release);
}

// ---------------------------------------------------------------------------------------------
// What a frame's call-frame information says, packed for the cache.

/// DWARF register numbers on x86-64.
const RBP: u64 = 6;
const RSP: u64 = 7;
const RA: u64 = 16;

/// How to step from a frame at a given address to its caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Step {
    /// The CFA is `rbp + cfa_off` (else `rsp + cfa_off`).
    cfa_rbp: bool,
    cfa_off: i64,
    /// The caller's `rbp` is saved at `CFA + rbp_off`; `None`: unchanged.
    rbp_off: Option<i64>,
}

/// A step, or the end of the stack.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    Step(Step),
    /// The outermost frame (return address undefined), or a frame we cannot describe.
    End,
}

/// Cache slot: `pc << 17 | rule` with the rule in 17 bits (bit 16: valid, 15: end, 14: CFA from
/// rbp, 13..7: CFA offset / 8 (0..127), 6..0: rbp offset / 8 + 64, 0 meaning not saved); 0 is
/// empty. Steps that do not fit are not cached.
const SLOTS: usize = 1 << 12;
static CACHE: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

fn slot(pc: usize) -> usize {
    ((pc as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize & (SLOTS - 1)
}

fn pack(pc: usize, r: Rule) -> Option<u64> {
    if pc >> 47 != 0 {
        return None;
    }
    let bits = match r {
        Rule::End => 1 << 16 | 1 << 15,
        Rule::Step(s) => {
            if s.cfa_off % 8 != 0 || !(0..=127 * 8).contains(&s.cfa_off) {
                return None;
            }
            let rbp = match s.rbp_off {
                None => 0,
                Some(o) if o % 8 == 0 && (-63 * 8..=63 * 8).contains(&o) && o != -64 * 8 => {
                    (o / 8 + 64) as u64
                }
                Some(_) => return None,
            };
            if rbp == 64 {
                // offset 0 would read as "not saved"
                return None;
            }
            1 << 16 | (s.cfa_rbp as u64) << 14 | ((s.cfa_off / 8) as u64) << 7 | rbp
        }
    };
    Some((pc as u64) << 17 | bits)
}

fn unpack(v: u64, pc: usize) -> Option<Rule> {
    if v >> 17 != pc as u64 || v & 1 << 16 == 0 {
        return None;
    }
    if v & 1 << 15 != 0 {
        return Some(Rule::End);
    }
    let rbp = v & 0x7f;
    Some(Rule::Step(Step {
        cfa_rbp: v & 1 << 14 != 0,
        cfa_off: ((v >> 7) & 0x7f) as i64 * 8,
        rbp_off: (rbp != 0).then(|| (rbp as i64 - 64) * 8),
    }))
}

/// The rule for code address `pc` (`lookup` is the address to look up: `pc - 1` for a return
/// address), from the cache or the call-frame information.
fn rule_for(pc: usize, lookup: usize, find: FindObject) -> Rule {
    let s = &CACHE[slot(pc)];
    if let Some(r) = unpack(s.load(Ordering::Relaxed), pc) {
        return r;
    }
    // SAFETY: `find` is glibc's _dl_find_object, which reads only the loader's own tables.
    let r = unsafe { rule_from_cfi(lookup, find) }.unwrap_or(Rule::End);
    if let Some(v) = pack(pc, r) {
        s.store(v, Ordering::Relaxed);
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Reading `.eh_frame_hdr`, CIEs and FDEs.

/// A cursor over call-frame information in memory.
struct Cur {
    p: *const u8,
    end: *const u8,
}

impl Cur {
    fn u8(&mut self) -> Option<u8> {
        if self.p >= self.end {
            return None;
        }
        // SAFETY: p < end, within the section the cursor was made over.
        let v = unsafe { *self.p };
        // SAFETY: one past p is at most end.
        self.p = unsafe { self.p.add(1) };
        Some(v)
    }

    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut b = [0u8; N];
        for x in b.iter_mut() {
            *x = self.u8()?;
        }
        Some(b)
    }

    fn uleb(&mut self) -> Option<u64> {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= ((b & 0x7f) as u64) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
    }

    fn sleb(&mut self) -> Option<i64> {
        let (mut v, mut shift) = (0i64, 0);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= ((b & 0x7f) as i64) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    v |= -1i64 << shift;
                }
                return Some(v);
            }
        }
    }

    /// A pointer in DWARF EH encoding `enc` (absolute, or relative to its own address).
    fn encoded(&mut self, enc: u8) -> Option<usize> {
        if enc == 0xff {
            return Some(0);
        }
        let at = self.p as usize;
        let v = match enc & 0x0f {
            0x00 | 0x04 | 0x0c => u64::from_le_bytes(self.bytes::<8>()?) as usize,
            0x01 => self.uleb()? as usize,
            0x02 => u16::from_le_bytes(self.bytes::<2>()?) as usize,
            0x03 => u32::from_le_bytes(self.bytes::<4>()?) as usize,
            0x09 => self.sleb()? as usize,
            0x0a => i16::from_le_bytes(self.bytes::<2>()?) as isize as usize,
            0x0b => i32::from_le_bytes(self.bytes::<4>()?) as isize as usize,
            _ => return None,
        };
        match enc & 0x70 {
            0x00 => Some(v),
            0x10 => Some(at.wrapping_add(v)),
            _ => None,
        }
    }
}

/// The rule at `pc` from the call-frame information of the object holding it.
///
/// # Safety
/// `find` is glibc's `_dl_find_object`; the `.eh_frame_hdr` and `.eh_frame` it leads to are
/// mapped and well formed (the loader and the linker made them).
unsafe fn rule_from_cfi(pc: usize, find: FindObject) -> Option<Rule> {
    // SAFETY: zero is a valid DlFindObject to be filled.
    let mut obj: DlFindObject = unsafe { core::mem::zeroed() };
    // SAFETY: find fills obj or fails.
    if unsafe { find(pc as *mut c_void, &mut obj) } != 0 || obj.eh_frame.is_null() {
        return None;
    }
    let hdr = obj.eh_frame as *const u8;
    // The header: version 1, then the encodings of the eh_frame pointer, the count and the
    // table; only the usual table (4-byte offsets from the header) is searched.
    // SAFETY: the header is at least 4 bytes.
    let (version, ptr_enc, count_enc, table_enc) =
        unsafe { (*hdr, *hdr.add(1), *hdr.add(2), *hdr.add(3)) };
    if version != 1 || table_enc != 0x3b {
        return None;
    }
    let mut c = Cur {
        // SAFETY: inside the header.
        p: unsafe { hdr.add(4) },
        end: usize::MAX as *const u8,
    };
    c.encoded(ptr_enc)?;
    let count = c.encoded(count_enc)?;
    let table = c.p as *const [i32; 2];
    // The last entry whose start is at or below pc.
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // SAFETY: mid < count entries follow the header.
        let start = hdr as usize as isize + unsafe { (*table.add(mid))[0] } as isize;
        if start as usize <= pc {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        return None;
    }
    // SAFETY: lo - 1 < count.
    let fde = (hdr as isize + unsafe { (*table.add(lo - 1))[1] } as isize) as *const u8;
    // SAFETY: the table points at FDEs of this object's .eh_frame.
    unsafe { rule_from_fde(fde, pc) }
}

/// What a CIE says for its FDEs.
struct Cie {
    code_align: u64,
    data_align: i64,
    ra_reg: u64,
    fde_enc: u8,
    has_aug: bool,
    signal: bool,
    init: Cur,
}

/// # Safety
/// `p` points at a well-formed CIE in a mapped `.eh_frame`.
unsafe fn read_cie(p: *const u8) -> Option<Cie> {
    let mut c = Cur {
        p,
        end: usize::MAX as *const u8,
    };
    let len = u32::from_le_bytes(c.bytes::<4>()?);
    if len == 0 || len == u32::MAX {
        return None;
    }
    // SAFETY: the CIE is len bytes after its length field.
    c.end = unsafe { p.add(4 + len as usize) };
    if u32::from_le_bytes(c.bytes::<4>()?) != 0 {
        return None;
    }
    let version = c.u8()?;
    let aug_start = c.p;
    let mut aug_len = 0;
    while c.u8()? != 0 {
        aug_len += 1;
    }
    // SAFETY: the augmentation string was just read.
    let aug = unsafe { core::slice::from_raw_parts(aug_start, aug_len) };
    if aug.starts_with(b"eh") {
        return None;
    }
    let code_align = c.uleb()?;
    let data_align = c.sleb()?;
    let ra_reg = if version == 1 {
        c.u8()? as u64
    } else {
        c.uleb()?
    };
    let mut cie = Cie {
        code_align,
        data_align,
        ra_reg,
        fde_enc: 0,
        has_aug: false,
        signal: false,
        init: Cur { p: c.p, end: c.end },
    };
    if aug.first() == Some(&b'z') {
        cie.has_aug = true;
        let n = c.uleb()? as usize;
        // SAFETY: the augmentation data is n bytes inside the CIE.
        let data_end = unsafe { c.p.add(n) };
        for &a in &aug[1..] {
            match a {
                b'R' => cie.fde_enc = c.u8()?,
                b'P' => {
                    let enc = c.u8()?;
                    c.encoded(enc & 0x7f)?;
                }
                b'L' => {
                    c.u8()?;
                }
                b'S' => cie.signal = true,
                _ => break,
            }
        }
        c.p = data_end;
    }
    cie.init = Cur { p: c.p, end: c.end };
    Some(cie)
}

/// # Safety
/// `fde` points at a well-formed FDE in a mapped `.eh_frame`.
unsafe fn rule_from_fde(fde: *const u8, pc: usize) -> Option<Rule> {
    let mut c = Cur {
        p: fde,
        end: usize::MAX as *const u8,
    };
    let len = u32::from_le_bytes(c.bytes::<4>()?);
    if len == 0 || len == u32::MAX {
        return None;
    }
    // SAFETY: the FDE is len bytes after its length field.
    c.end = unsafe { fde.add(4 + len as usize) };
    let id_at = c.p as usize;
    let cie_off = u32::from_le_bytes(c.bytes::<4>()?) as usize;
    // SAFETY: the CIE pointer leads back into the same .eh_frame.
    let cie = unsafe { read_cie(id_at.wrapping_sub(cie_off) as *const u8) }?;
    if cie.signal {
        return None;
    }
    let start = c.encoded(cie.fde_enc)?;
    let range = c.encoded(cie.fde_enc & 0x0f)?;
    if pc < start || pc >= start.wrapping_add(range) {
        return None;
    }
    if cie.has_aug {
        let n = c.uleb()? as usize;
        // SAFETY: the augmentation data is inside the FDE.
        c.p = unsafe { c.p.add(n) };
    }
    let mut st = State::default();
    run(&cie, cie.init_cur(), usize::MAX, 0, &mut st, None)?;
    let init = st;
    run(&cie, c, pc, start, &mut st, Some(&init))?;
    st.rule()
}

impl Cie {
    fn init_cur(&self) -> Cur {
        Cur {
            p: self.init.p,
            end: self.init.end,
        }
    }
}

/// The rules the programs build: the CFA, and where `rbp` and the return address are.
#[derive(Clone, Copy, Default)]
struct State {
    cfa_reg: u64,
    cfa_off: i64,
    /// Offset from the CFA where rbp is saved.
    rbp: Option<i64>,
    /// rbp's rule is something we cannot follow.
    rbp_bad: bool,
    ra: Option<i64>,
    ra_undefined: bool,
    ra_bad: bool,
    cfa_bad: bool,
}

impl State {
    fn rule(&self) -> Option<Rule> {
        if self.ra_undefined {
            return Some(Rule::End);
        }
        if self.cfa_bad || self.rbp_bad || self.ra_bad || self.ra != Some(-8) {
            return None;
        }
        let cfa_rbp = match self.cfa_reg {
            RSP => false,
            RBP => true,
            _ => return None,
        };
        Some(Rule::Step(Step {
            cfa_rbp,
            cfa_off: self.cfa_off,
            rbp_off: self.rbp,
        }))
    }

    fn set_offset(&mut self, reg: u64, off: i64) {
        match reg {
            RBP => (self.rbp, self.rbp_bad) = (Some(off), false),
            RA => (self.ra, self.ra_undefined, self.ra_bad) = (Some(off), false, false),
            _ => {}
        }
    }

    /// A rule we cannot follow for `reg` (a register, an expression, a value rule).
    fn set_other(&mut self, reg: u64) {
        match reg {
            RBP => self.rbp_bad = true,
            RA => self.ra_bad = true,
            _ => {}
        }
    }

    fn restore(&mut self, reg: u64, init: Option<&State>) {
        let Some(i) = init else { return };
        match reg {
            RBP => (self.rbp, self.rbp_bad) = (i.rbp, i.rbp_bad),
            RA => (self.ra, self.ra_undefined, self.ra_bad) = (i.ra, i.ra_undefined, i.ra_bad),
            _ => {}
        }
    }
}

/// Run call-frame instructions from `c`, starting at code address `loc`, until they pass
/// `pc`. `init` is the CIE's state (for `restore`); `None` while running the CIE itself.
fn run(
    cie: &Cie,
    mut c: Cur,
    pc: usize,
    mut loc: usize,
    st: &mut State,
    init: Option<&State>,
) -> Option<()> {
    let ra = cie.ra_reg;
    let map = |r: u64| if r == ra { RA } else { r };
    let mut saved = [State::default(); 4];
    let mut depth = 0;
    while c.p < c.end {
        let op = c.u8()?;
        let advance = |delta: u64, loc: &mut usize| -> bool {
            *loc = loc.wrapping_add((delta * cie.code_align) as usize);
            *loc > pc
        };
        match op >> 6 {
            1 => {
                if advance((op & 0x3f) as u64, &mut loc) {
                    return Some(());
                }
                continue;
            }
            2 => {
                let off = c.uleb()? as i64 * cie.data_align;
                st.set_offset(map((op & 0x3f) as u64), off);
                continue;
            }
            3 => {
                st.restore(map((op & 0x3f) as u64), init);
                continue;
            }
            _ => {}
        }
        match op {
            0x00 => {}
            0x02 => {
                let d = c.u8()? as u64;
                if advance(d, &mut loc) {
                    return Some(());
                }
            }
            0x03 => {
                let d = u16::from_le_bytes(c.bytes::<2>()?) as u64;
                if advance(d, &mut loc) {
                    return Some(());
                }
            }
            0x04 => {
                let d = u32::from_le_bytes(c.bytes::<4>()?) as u64;
                if advance(d, &mut loc) {
                    return Some(());
                }
            }
            0x05 => {
                let r = map(c.uleb()?);
                let off = c.uleb()? as i64 * cie.data_align;
                st.set_offset(r, off);
            }
            0x06 => {
                let r = map(c.uleb()?);
                st.restore(r, init);
            }
            0x07 => {
                let r = map(c.uleb()?);
                if r == RA {
                    st.ra_undefined = true;
                } else if r == RBP {
                    st.rbp_bad = true;
                }
            }
            0x08 => {
                let r = map(c.uleb()?);
                if r == RBP {
                    (st.rbp, st.rbp_bad) = (None, false);
                } else if r == RA {
                    st.ra_bad = true;
                }
            }
            0x09 => {
                let r = map(c.uleb()?);
                c.uleb()?;
                st.set_other(r);
            }
            0x0a => {
                if depth == saved.len() {
                    return None;
                }
                saved[depth] = *st;
                depth += 1;
            }
            0x0b => {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
                // The CFA rule comes back too: GCC and LLVM emit epilogues that rely on it
                // (remember before `leave; ret`, restore after it), as libgcc implements.
                *st = saved[depth];
            }
            0x0c => {
                st.cfa_reg = c.uleb()?;
                st.cfa_off = c.uleb()? as i64;
                st.cfa_bad = false;
            }
            0x0d => {
                st.cfa_reg = c.uleb()?;
                st.cfa_bad = false;
            }
            0x0e => st.cfa_off = c.uleb()? as i64,
            0x0f => {
                let n = c.uleb()? as usize;
                // SAFETY: the expression block is inside the program.
                c.p = unsafe { c.p.add(n) };
                st.cfa_bad = true;
            }
            0x10 | 0x16 => {
                let r = map(c.uleb()?);
                let n = c.uleb()? as usize;
                // SAFETY: the expression block is inside the program.
                c.p = unsafe { c.p.add(n) };
                st.set_other(r);
            }
            0x11 => {
                let r = map(c.uleb()?);
                let off = c.sleb()? * cie.data_align;
                st.set_offset(r, off);
            }
            0x12 => {
                st.cfa_reg = c.uleb()?;
                st.cfa_off = c.sleb()? * cie.data_align;
                st.cfa_bad = false;
            }
            0x13 => st.cfa_off = c.sleb()? * cie.data_align,
            0x14 => {
                let r = map(c.uleb()?);
                c.uleb()?;
                st.set_other(r);
            }
            0x15 => {
                let r = map(c.uleb()?);
                c.sleb()?;
                st.set_other(r);
            }
            0x2e => {
                c.uleb()?;
            }
            0x2f => {
                let r = map(c.uleb()?);
                let off = -(c.uleb()? as i64) * cie.data_align;
                st.set_offset(r, off);
            }
            _ => return None,
        }
    }
    Some(())
}

// ---------------------------------------------------------------------------------------------
// The walk.

/// Fill `out` with the return addresses of the calling thread's frames, innermost first,
/// leaving out the leading ones that lie in `[skip.0, skip.1)` (the allocator's own code).
/// Returns how many were written. Never allocates, takes no lock.
#[inline(never)]
pub fn backtrace(out: &mut [usize], skip: (usize, usize)) -> usize {
    let f = FIND_OBJECT.load(Ordering::Acquire);
    if f == 0 {
        return backtrace_libgcc(out, skip);
    }
    // SAFETY: FIND_OBJECT holds _dl_find_object's address, set by `init`.
    let find: FindObject = unsafe { core::mem::transmute::<usize, FindObject>(f) };
    let (mut pc, mut sp, mut bp): (usize, usize, usize);
    // SAFETY: reads three registers; the address taken is that of the next instruction, in
    // this function, whose call-frame information describes the frame at that point.
    unsafe {
        core::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nostack, nomem, preserves_flags)
        );
    }
    let mut n = 0;
    let mut first = true;
    for _ in 0..MAX_DEPTH {
        let lookup = if first { pc } else { pc - 1 };
        let step = match rule_for(pc, lookup, find) {
            Rule::Step(s) => s,
            Rule::End => break,
        };
        let cfa = (if step.cfa_rbp { bp } else { sp }) as i64 + step.cfa_off;
        let cfa = cfa as usize;
        // Callers' frames lie above; a CFA that does not is a walk gone wrong.
        if cfa <= sp || cfa - sp > 1 << 20 || cfa % 8 != 0 {
            break;
        }
        // SAFETY: the call-frame information says the return address is stored just below
        // the CFA, within the stack (checked above to lie above the current frame).
        let ra = unsafe { *((cfa - 8) as *const usize) };
        if let Some(o) = step.rbp_off {
            // SAFETY: as above, for the saved rbp the information names.
            bp = unsafe { *((cfa as i64 + o) as *const usize) };
        }
        sp = cfa;
        if ra == 0 {
            break;
        }
        pc = ra;
        first = false;
        if n == 0 && skip.0 <= pc && pc < skip.1 {
            continue;
        }
        out[n] = pc;
        n += 1;
        if n == out.len() {
            break;
        }
    }
    n
}

struct Walk<'a> {
    out: &'a mut [usize],
    len: usize,
    skip: (usize, usize),
}

/// `_Unwind_Reason_Code`: go on, and stop.
const URC_NO_REASON: c_int = 0;
const URC_END_OF_STACK: c_int = 5;

extern "C" fn step(ctx: *mut c_void, arg: *mut c_void) -> c_int {
    // SAFETY: `backtrace_libgcc` calls `_Unwind_Backtrace` only once both addresses are set,
    // and LIBGCC[1] holds `_Unwind_GetIP`'s.
    let get_ip =
        unsafe { core::mem::transmute::<usize, UnwindGetIp>(LIBGCC[1].load(Ordering::Acquire)) };
    // SAFETY: arg is the `Walk` that `backtrace_libgcc` passes, alive for the whole walk; ctx is
    // the unwinder's context for this frame.
    let (w, ip) = unsafe { (&mut *(arg as *mut Walk), get_ip(ctx)) };
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

/// [`backtrace`] through libgcc's `_Unwind_Backtrace` (no `_dl_find_object` on this system);
/// an empty stack where the program has not loaded libgcc either.
pub fn backtrace_libgcc(out: &mut [usize], skip: (usize, usize)) -> usize {
    let f = LIBGCC[0].load(Ordering::Acquire);
    if out.is_empty() || f == 0 {
        return 0;
    }
    // SAFETY: LIBGCC[0] holds `_Unwind_Backtrace`'s address (set after `_Unwind_GetIP`'s).
    let backtrace = unsafe { core::mem::transmute::<usize, UnwindBacktrace>(f) };
    let mut w = Walk { out, len: 0, skip };
    // SAFETY: `step` matches the callback type and only touches `w`, which outlives the call.
    unsafe { backtrace(step, &mut w as *mut Walk as *mut c_void) };
    w.len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() {
        // SAFETY: a constant NUL-terminated name.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()) };
        assert!(!f.is_null(), "glibc 2.35 or later has _dl_find_object");
        // SAFETY: constant NUL-terminated names; the test binary links libgcc_s (std does).
        let libgcc = unsafe {
            [
                libc::dlsym(libc::RTLD_DEFAULT, c"_Unwind_Backtrace".as_ptr()),
                libc::dlsym(libc::RTLD_DEFAULT, c"_Unwind_GetIP".as_ptr()),
            ]
        };
        assert!(!libgcc[0].is_null() && !libgcc[1].is_null());
        init(f, libgcc);
    }

    #[inline(never)]
    fn both(depth: u32, a: &mut [usize], b: &mut [usize]) -> (usize, usize) {
        if depth > 0 {
            let r = both(depth - 1, a, b);
            core::hint::black_box(&r);
            return r;
        }
        let n = backtrace(a, (0, 0));
        let m = backtrace_libgcc(b, (0, 0));
        (n, m)
    }

    #[test]
    fn agrees_with_libgcc() {
        setup();
        for round in 0..3 {
            let mut a = [0usize; 64];
            let mut b = [0usize; 64];
            let (n, m) = both(5, &mut a, &mut b);
            // libgcc's list starts inside `backtrace_libgcc`, ours inside `backtrace`: both
            // then run through `both` and its callers to the thread's start.
            assert!(n >= 8, "round {round}: {n} frames");
            // Compare the callers from the first frame of `both` on.
            let tail = |v: &[usize]| v.to_vec();
            let (ta, tb) = (tail(&a[1..n]), tail(&b[1..m]));
            let common = ta.len().min(tb.len());
            assert!(common >= 7, "round {round}: {ta:x?} / {tb:x?}");
            assert_eq!(
                ta[ta.len() - common..],
                tb[tb.len() - common..],
                "round {round}: ours {ta:x?}, libgcc {tb:x?}"
            );
        }
    }

    #[test]
    fn rules_pack_and_unpack() {
        let pc = 0x7f12_3456_789a;
        for r in [
            Rule::End,
            Rule::Step(Step {
                cfa_rbp: false,
                cfa_off: 8,
                rbp_off: None,
            }),
            Rule::Step(Step {
                cfa_rbp: true,
                cfa_off: 16,
                rbp_off: Some(-16),
            }),
            Rule::Step(Step {
                cfa_rbp: false,
                cfa_off: 1016,
                rbp_off: Some(-504),
            }),
        ] {
            let v = pack(pc, r).unwrap();
            assert_eq!(unpack(v, pc), Some(r));
            assert_eq!(unpack(v, pc + 1), None);
        }
        let big = Rule::Step(Step {
            cfa_rbp: false,
            cfa_off: 4096,
            rbp_off: None,
        });
        assert_eq!(pack(pc, big), None);
    }

    #[test]
    fn leb128() {
        let data = [0xe5u8, 0x8e, 0x26, 0x7f, 0x80, 0x7f];
        let mut c = Cur {
            p: data.as_ptr(),
            // SAFETY: one past the end of data.
            end: unsafe { data.as_ptr().add(data.len()) },
        };
        assert_eq!(c.uleb(), Some(624485));
        assert_eq!(c.sleb(), Some(-1));
        assert_eq!(c.sleb(), Some(-128));
        assert_eq!(c.u8(), None);
    }
}
