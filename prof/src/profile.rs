//! The heap profile dump (`xalloc-heap-profile 1`, docs/profile-format.md).

use std::path::Path;

use anyhow::{Context, Result};

use crate::dump::{self, number, numbers};

/// An executable file mapping of the process: frame addresses in `start..end` lie in `path` at
/// file offset `address - start + offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

/// A `live` line: one sampled block still allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSample {
    /// Requested size in bytes.
    pub size: u64,
    /// Bytes of live memory the sample stands for.
    pub weight: u64,
    /// Return addresses, innermost first.
    pub frames: Vec<u64>,
}

impl LiveSample {
    /// The estimated number of live objects the sample stands for: `WEIGHT / SIZE`.
    pub fn objects(&self) -> f64 {
        self.weight as f64 / self.size.max(1) as f64
    }
}

/// An `alloc` line: cumulative allocation at one stack.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocSample {
    /// Samples taken at this stack.
    pub count: u64,
    /// Bytes allocated (freed or not) that the samples stand for.
    pub weight: u64,
    pub frames: Vec<u64>,
}

impl AllocSample {
    /// The estimated number of objects allocated: the format gives no sizes for `alloc` lines,
    /// so this takes every sample of the stack to have the size whose sample weight
    /// (`s / (1 - exp(-s / rate))`) is the mean weight `WEIGHT / COUNT`, and divides.
    pub fn objects(&self, rate: u64) -> f64 {
        estimate_objects(self.count, self.weight, rate)
    }
}

/// See [`AllocSample::objects`].
pub fn estimate_objects(count: u64, weight: u64, rate: u64) -> f64 {
    if count == 0 || weight == 0 {
        return 0.0;
    }
    if rate == 0 {
        // every allocation sampled: a sample is one object
        return count as f64;
    }
    let r = rate as f64;
    let w = weight as f64 / count as f64;
    // f(s) = s / (1 - exp(-s/r)) rises from r (s -> 0) and f(s) > s, so s lies in (0, w).
    let f = |s: f64| s / -(-s / r).exp_m1();
    if w <= r {
        // below the weight of the smallest possible sample (rounding): one byte each
        return weight as f64;
    }
    let (mut lo, mut hi) = (0.0_f64, w);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < w {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let s = (0.5 * (lo + hi)).max(1.0);
    weight as f64 / s
}

/// A parsed heap profile.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub version: u32,
    pub pid: Option<u64>,
    /// Mean sampling interval in bytes.
    pub rate: u64,
    pub exe: Option<String>,
    pub maps: Vec<Mapping>,
    pub live: Vec<LiveSample>,
    pub alloc: Vec<AllocSample>,
    /// Whether the `end` line was there.
    pub complete: bool,
    /// What the reader skipped or found odd, for stderr.
    pub warnings: Vec<String>,
}

impl Profile {
    pub fn read(path: &Path) -> Result<Profile> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Profile::parse(&String::from_utf8_lossy(&bytes))
            .with_context(|| format!("reading {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Profile> {
        let lines = dump::split(text, "xalloc-heap-profile", "heap profile")?;
        let mut p = Profile {
            version: lines.version,
            complete: lines.complete,
            warnings: lines.warnings,
            ..Profile::default()
        };
        for (no, line) in lines.lines {
            if let Err(e) = p.parse_line(line) {
                p.warnings
                    .push(format!("line {no}: {e}; line skipped: {line:?}"));
            }
        }
        Ok(p)
    }

    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "pid" => self.pid = Some(number(rest).ok_or("bad pid")?),
            "rate" => self.rate = number(rest).ok_or("bad rate")?,
            "exe" => self.exe = Some(rest.to_string()),
            "map" => {
                // the path is the rest of the line: it may hold spaces
                let f: Vec<&str> = rest.splitn(4, ' ').collect();
                if f.len() < 4 || f[3].is_empty() {
                    return Err("a map line needs START END OFFSET PATH".into());
                }
                let n = numbers(&f[..3])?;
                if n[1] <= n[0] {
                    return Err("END is not above START".into());
                }
                self.maps.push(Mapping {
                    start: n[0],
                    end: n[1],
                    offset: n[2],
                    path: f[3].to_string(),
                });
            }
            "live" | "alloc" => {
                let f: Vec<&str> = rest.split(' ').filter(|s| !s.is_empty()).collect();
                if f.len() < 2 {
                    return Err(format!("a {kind} line needs two numbers and the frames"));
                }
                let n = numbers(&f)?;
                let frames = n[2..].to_vec();
                if kind == "live" {
                    self.live.push(LiveSample {
                        size: n[0],
                        weight: n[1],
                        frames,
                    });
                } else {
                    self.alloc.push(AllocSample {
                        count: n[0],
                        weight: n[1],
                        frames,
                    });
                }
            }
            // later versions may add kinds
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "xalloc-heap-profile 1
pid 4242
rate 524288
exe /usr/bin/python3.11
map 0x55d0c0a00000 0x55d0c0c00000 0x1000 /usr/bin/python3.11
map 0x7f3a10000000 0x7f3a10100000 0x0 /opt/my lib/libc.so.6
live 40 524307 0x55d0c0a01234 0x55d0c0a05678 0x7f3a10023456
something-new 1 2 3
alloc 3 1572921 0x55d0c0a01234 0x55d0c0a05678 0x7f3a10023456
end
";

    #[test]
    fn parses_the_documented_example() {
        let p = Profile::parse(SAMPLE).unwrap();
        assert!(p.complete);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.pid, Some(4242));
        assert_eq!(p.rate, 524288);
        assert_eq!(p.exe.as_deref(), Some("/usr/bin/python3.11"));
        assert_eq!(p.maps.len(), 2);
        assert_eq!(p.maps[0].start, 0x55d0c0a00000);
        assert_eq!(p.maps[0].offset, 0x1000);
        assert_eq!(p.maps[1].path, "/opt/my lib/libc.so.6");
        assert_eq!(
            p.live,
            vec![LiveSample {
                size: 40,
                weight: 524307,
                frames: vec![0x55d0c0a01234, 0x55d0c0a05678, 0x7f3a10023456]
            }]
        );
        assert!((p.live[0].objects() - 524307.0 / 40.0).abs() < 1e-9);
        assert_eq!(p.alloc.len(), 1);
        assert_eq!(p.alloc[0].count, 3);
        assert_eq!(p.alloc[0].weight, 1572921);
    }

    #[test]
    fn cut_short_file_and_bad_lines() {
        let text = "xalloc-heap-profile 1\nrate 100\nlive 10 100 0x10\nlive 10 zz 0x20\nmap 1 2\nlive 20 2";
        let p = Profile::parse(text).unwrap();
        assert!(!p.complete);
        // the last line, cut inside the frames, still parses as a sample with no frames
        assert_eq!(p.live.len(), 2);
        assert_eq!(p.live[1].frames, Vec::<u64>::new());
        let w = p.warnings.join("\n");
        assert!(w.contains("cut short"), "{w}");
        assert!(w.contains("line 4"), "{w}");
        assert!(w.contains("line 5"), "{w}");
    }

    #[test]
    fn alloc_object_estimate_inverts_the_sample_weight() {
        let rate = 524288u64;
        for size in [16.0_f64, 100.0, 4096.0, 1e6, 8e6] {
            let w = size / -(-size / rate as f64).exp_m1();
            let count = 7;
            let weight = (w * count as f64).round() as u64;
            let est = estimate_objects(count, weight, rate);
            let truth = weight as f64 / size;
            assert!(
                (est - truth).abs() / truth < 0.02,
                "size {size}: {est} vs {truth}"
            );
        }
        assert_eq!(estimate_objects(5, 500, 0), 5.0);
        assert_eq!(estimate_objects(0, 0, 10), 0.0);
    }
}
