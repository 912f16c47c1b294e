//! Generates the C header for the `xa_*` API with cbindgen (the shared library itself, with its
//! SONAME, is built by the `so/` package).
//!
//! The header is committed as `include/xalloc.h`; the build writes a fresh copy to
//! `$OUT_DIR/xalloc.h` (and to the path in `XALLOC_HEADER_OUT` when set, which `make header`
//! uses), and a test checks the two agree. Its `XALLOC_VERSION_*` macros come from the package
//! version in `Cargo.toml`.

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
