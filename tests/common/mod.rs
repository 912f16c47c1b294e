//! Paths shared by the integration tests.

use std::path::PathBuf;

/// The crate's root directory.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the crate root when relative),
/// else `target/` in the crate root.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => manifest_dir().join(d),
        _ => manifest_dir().join("target"),
    }
}
