//! Generates the C header for the `xa_*` API with cbindgen. The header is committed as
//! `include/xalloc.h`; the build writes a fresh copy to `$OUT_DIR/xalloc.h` (and to the path in
//! `XALLOC_HEADER_OUT` when set, which `make header` uses), and a test checks the two agree.

fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=XALLOC_HEADER_OUT");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml"))
        .expect("cbindgen.toml is readable");
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
