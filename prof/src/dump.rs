//! What the two dump formats share (docs/profile-format.md): a first line naming the format and
//! its version, fields separated by one space, numbers in decimal or `0x` hex, unknown line
//! kinds skipped, and a closing `end` line whose absence means the file was cut short.

use anyhow::{Result, bail};

/// The newest version of both formats that this reader knows.
pub const KNOWN_VERSION: u32 = 1;

/// The lines of a dump between its first line and `end`.
#[derive(Debug)]
pub(crate) struct Lines<'a> {
    pub version: u32,
    /// `(line number, text)`, without the first line and without `end` and what follows it.
    pub lines: Vec<(usize, &'a str)>,
    /// Whether the `end` line was there.
    pub complete: bool,
    pub warnings: Vec<String>,
}

/// Checks the first line (`MAGIC VERSION`) and collects the lines up to `end`.
pub(crate) fn split<'a>(text: &'a str, magic: &str, what: &str) -> Result<Lines<'a>> {
    let mut iter = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let Some((_, first)) = iter.find(|(_, l)| !l.trim().is_empty()) else {
        bail!("the file is empty (expected a {what}, starting with `{magic} {KNOWN_VERSION}`)");
    };
    let mut words = first.split_whitespace();
    if words.next() != Some(magic) {
        let hint = if first.starts_with("xalloc-heap-map") {
            " (it is a heap map: use `xalloc-prof heapmap`)"
        } else if first.starts_with("xalloc-heap-profile") {
            " (it is a heap profile: use top, flame, collapse, diff or pprof)"
        } else {
            ""
        };
        bail!(
            "not a {what}: the first line is {first:?}, expected `{magic} {KNOWN_VERSION}`{hint}"
        );
    }
    let version = match words.next().map(str::parse::<u32>) {
        Some(Ok(v)) => v,
        _ => bail!("not a {what}: the first line {first:?} has no version number"),
    };
    let mut warnings = Vec::new();
    if version > KNOWN_VERSION {
        warnings.push(format!(
            "format version {version} is newer than this reader's ({KNOWN_VERSION}): lines it does not know are skipped"
        ));
    }
    let mut lines = Vec::new();
    let mut complete = false;
    for (no, line) in iter {
        if line == "end" {
            complete = true;
            break;
        }
        if !line.trim().is_empty() {
            lines.push((no, line));
        }
    }
    if !complete {
        warnings.push(format!(
            "no `end` line: the file was cut short; using the {} lines read",
            lines.len()
        ));
    }
    Ok(Lines {
        version,
        lines,
        complete,
        warnings,
    })
}

/// A number as the dumps write them: decimal, or lower-case hex after `0x`.
pub fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses `fields` as numbers, or says which one is not.
pub(crate) fn numbers(fields: &[&str]) -> Result<Vec<u64>, String> {
    fields
        .iter()
        .map(|f| number(f).ok_or_else(|| format!("{f:?} is not a number")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_decimal_and_hex() {
        assert_eq!(number("42"), Some(42));
        assert_eq!(number("0x7f3a10023456"), Some(0x7f3a_1002_3456));
        assert_eq!(number("0x"), None);
        assert_eq!(number("-1"), None);
        assert_eq!(number("12a"), None);
    }

    #[test]
    fn header_checked_and_end_found() {
        let l = split(
            "xalloc-heap-map 1\npid 1\n\nend\ngarbage\n",
            "xalloc-heap-map",
            "heap map",
        )
        .unwrap();
        assert!(l.complete);
        assert_eq!(l.version, 1);
        assert_eq!(l.lines, vec![(2, "pid 1")]);
        assert!(l.warnings.is_empty());

        let l = split("xalloc-heap-map 2\npid 1\n", "xalloc-heap-map", "heap map").unwrap();
        assert!(!l.complete);
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
        assert!(l.warnings[1].contains("cut short"));

        let e = split("xalloc-heap-map 1\n", "xalloc-heap-profile", "heap profile").unwrap_err();
        assert!(e.to_string().contains("it is a heap map"), "{e}");
        assert!(split("", "xalloc-heap-map", "heap map").is_err());
        assert!(split("xalloc-heap-map\n", "xalloc-heap-map", "heap map").is_err());
    }
}
