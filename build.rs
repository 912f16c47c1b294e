//! Generates the C header for the `xa_*` API with cbindgen, and gives the shared library its
//! SONAME.
//!
//! The header is committed as `include/xalloc.h`; the build writes a fresh copy to
//! `$OUT_DIR/xalloc.h` (and to the path in `XALLOC_HEADER_OUT` when set, which `make header`
//! uses), and a test checks the two agree. Its `XALLOC_VERSION_*` macros come from the package
//! version in `Cargo.toml`.
//!
//! The SONAME is `libxalloc.so.MAJOR` (what `make install` installs, with the
//! `libxalloc.so.MAJOR.MINOR.PATCH` file it names). A program linked with `-lxalloc` against
//! the build directory records that name, so the build also leaves a link
//! `libxalloc.so.MAJOR -> libxalloc.so` beside the library cargo writes.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=XALLOC_HEADER_OUT");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let part = |name: &str| std::env::var(name).expect("cargo sets the version parts");
    let (major, minor, patch) = (
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    );

    let soname = format!("libxalloc.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    link_soname(Path::new(&out), &soname);

    let mut config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    config.after_includes = Some(format!(
        "\n/* The version of the library this header belongs to (Cargo.toml); `xa_version()`\n \
         * returns the library's own as \"MAJOR.MINOR.PATCH\". */\n\
         #define XALLOC_VERSION_MAJOR {major}\n\
         #define XALLOC_VERSION_MINOR {minor}\n\
         #define XALLOC_VERSION_PATCH {patch}\n\
         #define XALLOC_VERSION_STRING \"{version}\"\n"
    ));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(format!("{dir}/src/ffi.rs"))
        .generate()
        .expect("cbindgen can parse src/ffi.rs");
    bindings.write_to_file(format!("{out}/xalloc.h"));
    if let Ok(path) = std::env::var("XALLOC_HEADER_OUT") {
        bindings.write_to_file(path);
    }
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
