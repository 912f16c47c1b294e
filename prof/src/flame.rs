//! Flame graphs of collapsed stacks, drawn by inferno.

use inferno::flamegraph::{self, Options, Palette, color::BasicPalette};

/// An SVG flame graph of `(stack, bytes)` pairs (root first, `;`-separated).
pub fn flame_svg(stacks: &[(String, u64)], title: &str) -> anyhow::Result<Vec<u8>> {
    let lines: Vec<String> = stacks.iter().map(|(s, b)| format!("{s} {b}")).collect();
    let mut opts = Options::default();
    opts.title = title.to_string();
    opts.count_name = "bytes".into();
    opts.colors = Palette::Basic(BasicPalette::Mem);
    opts.hash = true;
    opts.deterministic = true;
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut svg)?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{locations, profile_a};
    use crate::report::{Measure, Resolved, collapse};

    #[test]
    fn svg_names_the_functions() {
        let prof = profile_a();
        let r = Resolved::with_locations(&prof, locations());
        let svg = flame_svg(&collapse(&r, Measure::Live), "live memory").unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg"), "{}", &svg[..200]);
        for name in ["main", "parse", "cache_put", "grow_table", "live memory"] {
            assert!(svg.contains(name), "{name} missing");
        }
        // parse holds 95% of the 10000 bytes
        assert!(svg.contains("parse (9,500 bytes, 95.00%)"), "{svg}");
        assert!(!svg.contains("operator new"));
    }
}
