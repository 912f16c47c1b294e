//! Gives `libxalloc.so` its SONAME, `libxalloc.so.MAJOR` (what `make install` installs, with the
//! `libxalloc.so.MAJOR.MINOR.PATCH` file it names), from the xalloc crate's version. A program
//! linked with `-lxalloc` against the build directory records that name, so the build also
//! leaves a link `libxalloc.so.MAJOR -> libxalloc.so` beside the library cargo writes.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=../Cargo.toml");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version parts");
    let root = std::fs::read_to_string("../Cargo.toml").expect("../Cargo.toml is readable");
    let crate_version = root
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("../Cargo.toml names its version");
    assert_eq!(
        version, crate_version,
        "so/Cargo.toml's version must be the xalloc crate's (../Cargo.toml)"
    );
    let soname = format!("libxalloc.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    link_soname(Path::new(&out), &soname);
}

/// Leave `<profile dir>/<soname> -> libxalloc.so` (the profile directory, where cargo puts the
/// library, is three levels above `OUT_DIR`: `<profile>/build/<pkg>-<hash>/out`).
fn link_soname(out_dir: &Path, soname: &str) {
    let Some(profile) = out_dir.ancestors().nth(3).map(PathBuf::from) else {
        return;
    };
    let link = profile.join(soname);
    if std::fs::symlink_metadata(&link).is_ok() {
        return;
    }
    // Best effort: a read-only or unusual target directory only loses the convenience link.
    let _ = std::os::unix::fs::symlink("libxalloc.so", &link);
}
