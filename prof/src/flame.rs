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
