//! `xalloc-prof`: reads the heap profile and heap map dumps that xalloc writes
//! (`docs/profile-format.md`) and turns them into tables, flame graphs, pprof files and heap map
//! pictures.

pub mod dump;
pub mod flame;
pub mod heapmap;
pub mod pprof;
pub mod profile;
pub mod report;
pub mod symbolize;
pub mod units;
