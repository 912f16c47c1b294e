//! Byte counts for people.

/// `1536` -> `1.5 KiB`; below 1 KiB, `N B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// [`human`] with a sign: `+1.5 KiB`, `-20 B`, `0 B`.
pub fn human_signed(delta: i128) -> String {
    let mag = human(u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX));
    match delta.signum() {
        1 => format!("+{mag}"),
        -1 => format!("-{mag}"),
        _ => mag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(12 << 20), "12.0 MiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
        assert_eq!(human_signed(-2048), "-2.0 KiB");
        assert_eq!(human_signed(5), "+5 B");
        assert_eq!(human_signed(0), "0 B");
    }
}
