//! Test kit for xalloc: random operation sequences run against the allocator and checked
//! against a shadow model. Used by the property tests in `testkit/tests/` and by the
//! cargo-fuzz target in `fuzz/`; not part of the allocator crate, which it drives only through
//! its public API (`xalloc::ffi` and the size constants at the crate root). It allocates
//! freely: its own `Vec`s and `BTreeMap`s come from xalloc too, through the `malloc` that
//! xalloc's default feature `override` exports into every program that links it.
//!
//! # Pieces
//!
//! - [`ops`]: [`Op`], one step — allocate into a slot (`malloc`, `calloc`, `aligned_alloc`, a
//!   burst of `malloc`s), `realloc` or free a slot, inspect a slot, ask for something that must
//!   fail, `xa_trim`, `xa_check_heap`, `xa_stats`. There are [`SLOTS`] slots; allocating into
//!   an occupied slot first frees the block there. [`decode`] turns arbitrary bytes into at
//!   most [`MAX_OPS`] ops: every byte string is a valid program (see [`Reader`]).
//! - [`model`]: the shadow model. A [`Block`] is a live block as the model knows it (address,
//!   requested and usable size, pattern seed); a [`Model`] indexes live blocks by address and
//!   refuses overlaps; a [`SharedModel`] is one `Model` for the engines of several threads.
//! - [`pattern`]: the byte pattern written over live blocks and the checks that read it back.
//! - [`Engine`]: runs ops and keeps the model: for each slot its block, all of them also in the
//!   engine's [`Model`] and, for an engine made by [`Engine::with_shared`], in the shared one.
//!   [`Engine::hand_off`] and [`Engine::take_in`] move live blocks between engines (threads);
//!   a [`Handoff`] can also be verified and freed on its own.
//! - [`run`] / [`run_with`] / [`run_bytes`]: run a whole sequence, free everything at the end,
//!   and return a [`Summary`].
//!
//! # Checked properties
//!
//! Any violation panics with the op index, the op, and what went wrong.
//!
//! - A successful allocation is non-null, 16-byte aligned and aligned as asked, its usable size
//!   covers the request, `xa_owns` says 1, and its usable range overlaps no other live block
//!   of the engine, nor, with a shared model, any live block of another engine on any thread
//!   or one in transit between them.
//!   `calloc` memory reads as zero over the requested size.
//! - The whole usable range is written with the block's pattern (blocks above 64 KiB only at
//!   samples: the first and last 4 KiB, and 16 bytes around every 1st, 4th or 16th page
//!   boundary, sparser as blocks grow), and verified before every free and realloc, on
//!   [`Op::Inspect`], after trim and heap checks, and when a block is handed off, taken in or
//!   freed from a [`Handoff`].
//! - `xa_usable_size` does not change while a block lives, and `xa_owns` stays 1.
//! - `realloc` keeps the common prefix of the requested sizes; `realloc(p, 0)` returns NULL;
//!   `realloc(NULL, n)` allocates.
//! - Requests above `isize::MAX`, overflowing `calloc`s and bad alignments return NULL and set
//!   `errno` (`ENOMEM` / `EINVAL`); a failed `realloc` leaves the block intact. Successful calls
//!   and `free` leave `errno` alone.
//! - With [`Config::exclusive`] (no other thread allocates meanwhile): `xa_owns` is 0 for a
//!   block just freed or just moved by `realloc`, and `xa_stats` counts at least the model's
//!   live bytes.
//! - `xa_check_heap` (which aborts on a broken invariant) runs on [`Op::CheckHeap`] (up to
//!   [`Config::max_heap_checks`] times) and at the end.
//!
//! Total live bytes of an engine stay under [`Config::max_live_bytes`]: an allocation that
//! would exceed it is skipped (and counted in [`Summary::skipped`]), so every run stays
//! memory-bounded.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(clippy::missing_safety_doc)]

mod engine;
mod errno;
pub mod model;
pub mod ops;
pub mod pattern;

pub use engine::{
    Config, DEFAULT_MAX_LIVE_BYTES, Engine, Handoff, Summary, run, run_bytes, run_with,
};
pub use model::{Block, Model, SharedModel};
pub use ops::{BURST_SIZE_LIMIT, Bad, MAX_OPS, NewSize, Op, Reader, SLOTS, decode};
pub use pattern::{FULL_CHECK_LIMIT, mix64};
