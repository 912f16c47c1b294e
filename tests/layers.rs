//! The layer rule of `src/lib.rs`: each module uses only modules of lower layers.
//!
//! Reads the layer table from the crate docs in `src/lib.rs` (the rows `//! L<n> | modules |
//! what` of its `text` block) and every `crate::` path in the code of `src/*.rs` (comments
//! excluded; `use crate::{a, b::c}` groups included; the `xa_assert!` / `xa_check!` macros
//! count as uses of `debug`), and fails, naming file and line, on a use of a module of the
//! same or a higher layer, on a path to something that is not a module of the table (the
//! crate root's re-exports are for users, not for the allocator's own modules), on a file
//! missing from the table and on a table entry with no file. With strictly lower layers only,
//! no circle of imports can exist.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Module name -> layer, from the table in `lib.rs`.
fn parse_table(lib: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! L") else {
            continue;
        };
        let mut cols = row.split('|');
        let (Some(n), Some(mods)) = (cols.next(), cols.next()) else {
            continue;
        };
        let Ok(n) = n.trim().parse::<u32>() else {
            continue;
        };
        for m in mods.split_whitespace() {
            assert!(
                layers.insert(m.to_string(), n).is_none(),
                "module {m} appears twice in the layer table"
            );
        }
    }
    layers
}

/// The modules named by `crate::` paths (and the assertion macros) in one line of code, with
/// comments removed.
fn used_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let code = match code.find("//") {
        Some(i) => &code[..i],
        None => code,
    };
    if code.contains("xa_check!") || code.contains("xa_assert!") {
        out.push("debug".to_string());
    }
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `$crate::` inside a macro definition is the same path.
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // use crate::{a, b::{c, d}, e}: the names at depth 0 of the group
            let (mut depth, mut word, mut expect_name) = (0, String::new(), true);
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => expect_name = true,
                    c if (c.is_alphanumeric() || c == '_') && depth == 0 && expect_name => {
                        word.push(c)
                    }
                    _ => {
                        if !word.is_empty() {
                            out.push(std::mem::take(&mut word));
                            expect_name = false;
                        }
                    }
                }
            }
            if !word.is_empty() {
                out.push(word);
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
        rest = after;
    }
    out
}

/// Every violation in `files` (module name, source text) against `layers`, as
/// `src/<file>.rs:<line>: <what>`.
fn violations(layers: &BTreeMap<String, u32>, files: &[(String, String)]) -> Vec<String> {
    let mut errors = Vec::new();
    for (module, text) in files {
        let Some(&mine) = layers.get(module) else {
            errors.push(format!(
                "src/{module}.rs: not in the layer table of src/lib.rs"
            ));
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            for used in used_modules(line) {
                if &used == module {
                    continue;
                }
                let at = format!("src/{module}.rs:{}", i + 1);
                match layers.get(&used) {
                    None => errors.push(format!(
                        "{at}: `crate::{used}` is not a module of the layer table"
                    )),
                    Some(&theirs) if theirs >= mine => errors.push(format!(
                        "{at}: {module} (L{mine}) uses {used} (L{theirs}): {}",
                        if theirs == mine {
                            "sideways"
                        } else {
                            "upwards"
                        }
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    errors
}

#[test]
fn every_import_goes_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let layers = parse_table(&lib);
    assert!(layers.len() > 10, "no layer table found in src/lib.rs");
    let mut files = Vec::new();
    for entry in fs::read_dir(&src).expect("src/") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            path.is_file() && name.ends_with(".rs"),
            "src/{name}: the layer test expects a flat src/ of .rs files"
        );
        if name == "lib.rs" {
            continue;
        }
        let module = name.trim_end_matches(".rs").to_string();
        files.push((module, fs::read_to_string(&path).expect("readable")));
    }
    let mut errors = violations(&layers, &files);
    for m in layers.keys() {
        if !files.iter().any(|(f, _)| f == m) {
            errors.push(format!(
                "layer table names {m}, but src/{m}.rs does not exist"
            ));
        }
        let declared = lib
            .lines()
            .any(|l| l.trim() == format!("mod {m};") || l.trim() == format!("pub mod {m};"));
        if !declared {
            errors.push(format!("src/lib.rs does not declare module {m}"));
        }
    }
    assert!(
        errors.is_empty(),
        "layer rule broken:\n{}",
        errors.join("\n")
    );
}

/// The checker itself finds what it must: an upward, a sideways and an unknown path, in
/// every form it reads, and nothing in comments.
#[test]
fn the_checker_catches_bad_imports() {
    let table = "//! L3 | low | x\n//! L4 | mid other | y\n//! L5 | top | z\n";
    let layers = parse_table(table);
    assert_eq!(layers["low"], 3);
    assert_eq!(layers["other"], 4);
    let files = vec![
        (
            "mid".to_string(),
            [
                "use crate::low::Thing;",                  // fine
                "use crate::top::Up;",                     // upwards
                "let x = crate::other::f();",              // sideways
                "use crate::{low::A, top::{B, C}};",       // the group names top
                "// crate::top in a comment is no import", // ignored
                "use crate::nowhere;",                     // unknown
            ]
            .join("\n"),
        ),
        ("low".to_string(), "    xa_check!(a == b);".to_string()), // debug is not in this table
        ("stray".to_string(), String::new()),
    ];
    let errs = violations(&layers, &files);
    let expect = [
        "src/mid.rs:2: mid (L4) uses top (L5): upwards",
        "src/mid.rs:3: mid (L4) uses other (L4): sideways",
        "src/mid.rs:4: mid (L4) uses top (L5): upwards",
        "src/mid.rs:6: `crate::nowhere` is not a module of the layer table",
        "src/low.rs:1: `crate::debug` is not a module of the layer table",
        "src/stray.rs: not in the layer table of src/lib.rs",
    ];
    assert_eq!(errs, expect);
}
