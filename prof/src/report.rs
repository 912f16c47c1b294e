//! Call-site tables (`top`, `diff`) and collapsed stacks (`collapse`, `flame`).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::profile::Profile;
use crate::symbolize::{Frame, Location, Symbolizer};
use crate::units::{human, human_signed};

/// Which lines of the profile to weigh by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// `live` lines: memory still allocated at the dump.
    Live,
    /// `alloc` lines: everything allocated since the profiler started.
    Alloc,
}

impl Measure {
    pub fn describe(self) -> &'static str {
        match self {
            Measure::Live => "live memory",
            Measure::Alloc => "cumulative allocation",
        }
    }
}

/// Function names (prefixes) of frames that belong to the allocation machinery rather than to
/// the program: the innermost frames of a stack are dropped while they match, and so are frames
/// in `libxalloc.so`. The `[bracketed]` entries are the exact names of the C functions.
pub const ALLOCATOR_PREFIXES: &[&str] = &[
    "operator new",
    "_Znw",
    "_Zna",
    "std::allocator<",
    "std::allocator_traits<",
    "std::__new_allocator<",
    "__gnu_cxx::new_allocator<",
    "__gnu_cxx::__new_allocator<",
    "__rust_alloc",
    "__rust_realloc",
    "__rdl_",
    "alloc::alloc::",
    "xalloc::",
    "xa_",
];

/// C functions that only allocate for their caller (matched exactly).
pub const ALLOCATOR_FUNCTIONS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "strdup",
    "strndup",
    "__strdup",
    "__strndup",
    // glibc's own names for the malloc family (not every `__libc_` function: the program's
    // start, `__libc_start_main`, is one too)
    "__libc_malloc",
    "__libc_calloc",
    "__libc_realloc",
    "__libc_memalign",
    "__libc_valloc",
    "__libc_pvalloc",
];

/// Whether a frame is the allocator's, the C++ runtime's `operator new`, or a libc malloc
/// wrapper (see [`ALLOCATOR_PREFIXES`]).
pub fn is_allocator_frame(f: &Frame) -> bool {
    let in_xalloc = f.object.as_deref().is_some_and(|o| {
        o.rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with("libxalloc.so"))
    });
    if in_xalloc {
        return true;
    }
    if !f.named {
        return false;
    }
    let name = f.function.as_str();
    let bare = name.split('(').next().unwrap_or(name);
    ALLOCATOR_FUNCTIONS.contains(&bare) || ALLOCATOR_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether a frame is the language runtime's: code from the C++ standard library's headers
/// (`.../include/c++/...`, e.g. `std::vector`'s growth inlined into the program) or from
/// `libstdc++.so`/`libc++.so`, or Rust's standard library (`/rustc/...`, `/rust/deps/...`).
pub fn is_runtime_frame(f: &Frame) -> bool {
    let file = f.file.as_deref().unwrap_or("");
    let object = f
        .object
        .as_deref()
        .and_then(|o| o.rsplit('/').next())
        .unwrap_or("");
    file.contains("/include/c++/")
        || file.starts_with("/rustc/")
        || file.starts_with("/rust/deps/")
        || ["libstdc++.so", "libc++.so", "libc++abi.so"]
            .iter()
            .any(|l| object.starts_with(l))
}

/// The call site of a stack: its innermost frame that is neither the allocator's nor the
/// language runtime's (the innermost that is not the allocator's when all are the runtime's).
pub fn call_site<'a>(frames: &[&'a Frame]) -> &'a Frame {
    let program = program_frames(frames);
    program
        .iter()
        .find(|f| !is_runtime_frame(f))
        .unwrap_or(&program[0])
}

/// The frames of a stack from the program's call of the allocator outwards: the innermost
/// allocator frames dropped (all frames if every one is the allocator's).
pub fn program_frames<'a>(frames: &[&'a Frame]) -> Vec<&'a Frame> {
    let skip = frames.iter().take_while(|f| is_allocator_frame(f)).count();
    if skip == frames.len() {
        frames.to_vec()
    } else {
        frames[skip..].to_vec()
    }
}

/// A profile with every frame address symbolised.
pub struct Resolved<'p> {
    pub profile: &'p Profile,
    pub locations: HashMap<u64, Location>,
    unknown: Frame,
}

impl<'p> Resolved<'p> {
    pub fn new(profile: &'p Profile, symbolizer: &mut Symbolizer) -> Resolved<'p> {
        let mut locations = HashMap::new();
        let addresses = profile
            .live
            .iter()
            .flat_map(|s| &s.frames)
            .chain(profile.alloc.iter().flat_map(|s| &s.frames));
        for &a in addresses {
            locations
                .entry(a)
                .or_insert_with(|| symbolizer.locate(&profile.maps, a));
        }
        Resolved::with_locations(profile, locations)
    }

    /// A profile whose addresses were resolved elsewhere; those missing from `locations` are
    /// named `0xADDRESS`.
    pub fn with_locations(
        profile: &'p Profile,
        mut locations: HashMap<u64, Location>,
    ) -> Resolved<'p> {
        let addresses = profile
            .live
            .iter()
            .flat_map(|s| &s.frames)
            .chain(profile.alloc.iter().flat_map(|s| &s.frames));
        for &a in addresses {
            locations
                .entry(a)
                .or_insert_with(|| Symbolizer::new().locate(&[], a));
        }
        Resolved {
            profile,
            locations,
            unknown: Frame {
                function: "(no frames)".into(),
                system_name: None,
                file: None,
                line: None,
                object: None,
                named: false,
                inlined: false,
            },
        }
    }

    /// All frames of a stack, inlined ones expanded, innermost first.
    pub fn frames(&self, addresses: &[u64]) -> Vec<&Frame> {
        let v: Vec<&Frame> = addresses
            .iter()
            .flat_map(|a| &self.locations[a].frames)
            .collect();
        if v.is_empty() { vec![&self.unknown] } else { v }
    }

    /// `(frames, bytes, objects, samples)` for each line of the measure.
    pub fn stacks(&self, measure: Measure) -> Vec<(Vec<&Frame>, u64, f64, u64)> {
        match measure {
            Measure::Live => self
                .profile
                .live
                .iter()
                .map(|s| (self.frames(&s.frames), s.weight, s.objects(), 1))
                .collect(),
            Measure::Alloc => self
                .profile
                .alloc
                .iter()
                .map(|s| {
                    let objects = s.objects(self.profile.rate);
                    (self.frames(&s.frames), s.weight, objects, s.count)
                })
                .collect(),
        }
    }
}

/// A call site: the program's innermost frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
}

impl Site {
    fn of(f: &Frame) -> Site {
        Site {
            function: f.function.clone(),
            file: f.file.clone(),
            line: f.line,
        }
    }

    pub fn file_line(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) if l > 0 => format!("{f}:{l}"),
            (Some(f), _) => f.clone(),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteRow {
    pub site: Site,
    pub bytes: u64,
    pub objects: f64,
    pub samples: u64,
}

/// Call sites by weight, heaviest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    pub measure: Measure,
    pub rows: Vec<SiteRow>,
    pub total_bytes: u64,
    pub total_objects: f64,
    pub total_samples: u64,
}

impl Top {
    pub fn share(&self, bytes: u64) -> f64 {
        if self.total_bytes == 0 {
            0.0
        } else {
            100.0 * bytes as f64 / self.total_bytes as f64
        }
    }
}

/// Groups the stacks by call site ([`call_site`]).
pub fn top(resolved: &Resolved<'_>, measure: Measure) -> Top {
    let mut sites: HashMap<Site, SiteRow> = HashMap::new();
    let (mut total_bytes, mut total_objects, mut total_samples) = (0, 0.0, 0);
    for (frames, bytes, objects, samples) in resolved.stacks(measure) {
        let site = Site::of(call_site(&frames));
        let row = sites.entry(site.clone()).or_insert(SiteRow {
            site,
            bytes: 0,
            objects: 0.0,
            samples: 0,
        });
        row.bytes += bytes;
        row.objects += objects;
        row.samples += samples;
        total_bytes += bytes;
        total_objects += objects;
        total_samples += samples;
    }
    let mut rows: Vec<SiteRow> = sites.into_values().collect();
    rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.site.cmp(&b.site)));
    Top {
        measure,
        rows,
        total_bytes,
        total_objects,
        total_samples,
    }
}

fn header_line(profile: &Profile, what: &str) -> String {
    let mut s = format!("xalloc-prof {what}");
    if let Some(pid) = profile.pid {
        let _ = write!(s, ", pid {pid}");
    }
    if let Some(exe) = &profile.exe {
        let _ = write!(s, ", {exe}");
    }
    if profile.rate > 0 {
        let _ = write!(
            s,
            " (a sample every {} allocated, on average)",
            human(profile.rate)
        );
    }
    s
}

/// The `top` table: at most `n` rows, and the totals.
pub fn format_top(top: &Top, profile: &Profile, n: usize) -> String {
    let mut out = header_line(profile, top.measure.describe());
    out.push('\n');
    let _ = writeln!(
        out,
        "{:>24}  {:>10}  {:>6}  function  (file:line)",
        "bytes", "objects", "share"
    );
    for r in top.rows.iter().take(n) {
        let _ = writeln!(
            out,
            "{:>24}  {:>10}  {:>5.1}%  {}  {}",
            format!("{} ({})", human(r.bytes), r.bytes),
            r.objects.round(),
            top.share(r.bytes),
            r.site.function,
            r.site.file_line()
        );
    }
    let what = match top.measure {
        Measure::Live => "live",
        Measure::Alloc => "allocated",
    };
    let _ = writeln!(
        out,
        "total: {} ({} bytes) {what} in {} objects, {} samples, {} call sites (showing {})",
        human(top.total_bytes),
        top.total_bytes,
        top.total_objects.round(),
        top.total_samples,
        top.rows.len(),
        n.min(top.rows.len())
    );
    out
}

/// A call site's bytes in two profiles.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub site: Site,
    pub old: u64,
    pub new: u64,
}

impl DiffRow {
    pub fn delta(&self) -> i128 {
        self.new as i128 - self.old as i128
    }
}

/// Every call site of either profile, by growth (new minus old), largest first.
pub fn diff(old: &Top, new: &Top) -> Vec<DiffRow> {
    let mut rows: HashMap<Site, DiffRow> = HashMap::new();
    for (r, is_new) in old
        .rows
        .iter()
        .map(|r| (r, false))
        .chain(new.rows.iter().map(|r| (r, true)))
    {
        let row = rows.entry(r.site.clone()).or_insert(DiffRow {
            site: r.site.clone(),
            old: 0,
            new: 0,
        });
        if is_new {
            row.new += r.bytes;
        } else {
            row.old += r.bytes;
        }
    }
    let mut rows: Vec<DiffRow> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        b.delta()
            .cmp(&a.delta())
            .then_with(|| b.new.cmp(&a.new))
            .then_with(|| a.site.cmp(&b.site))
    });
    rows
}

/// The `diff` table: the `n` fastest-growing call sites, and the totals.
pub fn format_diff(rows: &[DiffRow], old: &Top, new: &Top, n: usize) -> String {
    let mut out = format!(
        "xalloc-prof diff: {} (new minus old)\n",
        old.measure.describe()
    );
    let _ = writeln!(
        out,
        "{:>26}  {:>24}  {:>24}  function  (file:line)",
        "delta", "old", "new"
    );
    let shown: Vec<&DiffRow> = rows.iter().filter(|r| r.delta() != 0).take(n).collect();
    for r in &shown {
        let d = r.delta();
        let _ = writeln!(
            out,
            "{:>26}  {:>24}  {:>24}  {}  {}",
            format!("{} ({d:+})", human_signed(d)),
            format!("{} ({})", human(r.old), r.old),
            format!("{} ({})", human(r.new), r.new),
            r.site.function,
            r.site.file_line()
        );
    }
    let d = new.total_bytes as i128 - old.total_bytes as i128;
    let changed = rows.iter().filter(|r| r.delta() != 0).count();
    let _ = writeln!(
        out,
        "total: old {} ({} bytes), new {} ({} bytes), delta {} ({d:+} bytes); {changed} of {} call sites changed (showing {})",
        human(old.total_bytes),
        old.total_bytes,
        human(new.total_bytes),
        new.total_bytes,
        human_signed(d),
        rows.len(),
        shown.len()
    );
    out
}

/// A frame's name in a collapsed stack: `;` separates frames there, and the count follows the
/// last space of the line, so neither may end a name.
fn collapsed_name(f: &Frame) -> String {
    let s: String = f
        .function
        .chars()
        .map(|c| match c {
            ';' => ':',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        })
        .collect();
    let s = s.trim_end().to_string();
    if s.is_empty() { "?".into() } else { s }
}

/// Collapsed stacks, root first (`main;parse;read_record BYTES`), allocator frames dropped,
/// sorted by stack.
pub fn collapse(resolved: &Resolved<'_>, measure: Measure) -> Vec<(String, u64)> {
    let mut stacks: HashMap<String, u64> = HashMap::new();
    for (frames, bytes, _, _) in resolved.stacks(measure) {
        let program = program_frames(&frames);
        let key = program
            .iter()
            .rev()
            .map(|f| collapsed_name(f))
            .collect::<Vec<_>>()
            .join(";");
        *stacks.entry(key).or_default() += bytes;
    }
    let mut v: Vec<(String, u64)> = stacks.into_iter().filter(|(_, b)| *b > 0).collect();
    v.sort();
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::profile::{AllocSample, LiveSample};

    /// A named frame.
    pub fn named(function: &str, file: &str, line: u32) -> Frame {
        Frame {
            function: function.into(),
            system_name: None,
            file: Some(file.into()),
            line: Some(line),
            object: Some("/bin/prog".into()),
            named: true,
            inlined: false,
        }
    }

    fn loc(address: u64, frames: Vec<Frame>) -> (u64, Location) {
        (
            address,
            Location {
                address,
                mapping: None,
                frames,
            },
        )
    }

    /// Addresses: 1 operator new, 2 __libc_malloc, 3 xalloc's, 10/11 two lines of parse,
    /// 20 cache_put (with an inlined helper), 30 main.
    pub fn locations() -> HashMap<u64, Location> {
        let mut in_xalloc = Frame::unnamed(
            "/usr/lib/libxalloc.so.0.1.0+0x1234".into(),
            Some("/usr/lib/libxalloc.so.0.1.0".into()),
        );
        in_xalloc.named = false;
        let mut helper = named("grow_table", "cache.c", 7);
        helper.inlined = true;
        [
            loc(
                1,
                vec![named("operator new(unsigned long)", "new_op.cc", 50)],
            ),
            loc(2, vec![named("__libc_malloc", "malloc.c", 3000)]),
            loc(3, vec![in_xalloc]),
            loc(10, vec![named("parse", "parse.c", 42)]),
            loc(11, vec![named("parse", "parse.c", 57)]),
            loc(20, vec![helper, named("cache_put", "cache.c", 90)]),
            loc(30, vec![named("main", "main.c", 5)]),
            loc(
                40,
                vec![
                    named(
                        "std::_Vector_base<int, std::allocator<int> >::_M_allocate(unsigned long)",
                        "/usr/include/c++/12/bits/stl_vector.h",
                        378,
                    ),
                    named("void std::vector<int>::_M_realloc_insert<int const&>()", "/usr/include/c++/12/bits/vector.tcc", 440),
                    named("fill", "fill.cc", 12),
                ],
            ),
            loc(
                50,
                vec![named(
                    "alloc::raw_vec::RawVec<T,A>::grow_one",
                    "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/raw_vec/mod.rs",
                    340,
                )],
            ),
            loc(51, vec![named("app::load", "src/load.rs", 20)]),
        ]
        .into_iter()
        .collect()
    }

    fn live(size: u64, weight: u64, frames: &[u64]) -> LiveSample {
        LiveSample {
            size,
            weight,
            frames: frames.to_vec(),
        }
    }

    pub fn profile_a() -> Profile {
        Profile {
            rate: 1000,
            pid: Some(7),
            complete: true,
            live: vec![
                live(100, 6000, &[1, 10, 30]),
                live(100, 2000, &[2, 3, 10, 30]),
                live(50, 1500, &[11, 30]),
                live(10, 500, &[3, 20, 30]),
            ],
            alloc: vec![
                AllocSample {
                    count: 2,
                    weight: 100_000,
                    frames: vec![20, 30],
                },
                AllocSample {
                    count: 1,
                    weight: 3000,
                    frames: vec![10, 30],
                },
            ],
            ..Profile::default()
        }
    }

    #[test]
    fn allocator_frames() {
        let l = locations();
        assert!(is_allocator_frame(&l[&1].frames[0]));
        assert!(is_allocator_frame(&l[&2].frames[0]));
        assert!(is_allocator_frame(&l[&3].frames[0]));
        assert!(!is_allocator_frame(&l[&10].frames[0]));
        assert!(is_allocator_frame(&named("strdup", "", 0)));
        assert!(is_allocator_frame(&named(
            "std::__new_allocator<int>::allocate(unsigned long, void const*)",
            "",
            0
        )));
        assert!(!is_allocator_frame(&named("mallocator", "", 0)));
        assert!(!is_allocator_frame(&named(
            "std::vector<int>::push_back",
            "",
            0
        )));
    }

    #[test]
    fn top_groups_by_the_programs_innermost_frame() {
        let p = profile_a();
        let r = Resolved::with_locations(&p, locations());
        let t = top(&r, Measure::Live);
        assert_eq!(t.total_bytes, 10_000);
        assert_eq!(t.total_samples, 4);
        assert!((t.total_objects - (60.0 + 20.0 + 30.0 + 50.0)).abs() < 1e-9);
        let got: Vec<(&str, Option<u32>, u64)> = t
            .rows
            .iter()
            .map(|r| (r.site.function.as_str(), r.site.line, r.bytes))
            .collect();
        // operator new, __libc_malloc and libxalloc frames dropped; the inlined helper is the
        // innermost program frame at address 20
        assert_eq!(
            got,
            vec![
                ("parse", Some(42), 8000),
                ("parse", Some(57), 1500),
                ("grow_table", Some(7), 500),
            ]
        );
        assert!((t.share(8000) - 80.0).abs() < 1e-9);
        let text = format_top(&t, &p, 2);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].contains("parse")
                && lines[2].contains("80.0%")
                && lines[2].contains("parse.c:42"),
            "{text}"
        );
        assert!(lines[2].contains("7.8 KiB (8000)"), "{text}");
        assert!(
            lines[3].contains("15.0%") && lines[3].contains("parse.c:57"),
            "{text}"
        );
        assert!(!text.contains("grow_table"), "-n 2 shows two rows: {text}");
        assert!(text.contains("total: 9.8 KiB (10000 bytes) live in 160 objects, 4 samples, 3 call sites (showing 2)"), "{text}");
    }

    #[test]
    fn top_cumulative_uses_alloc_lines() {
        let p = profile_a();
        let r = Resolved::with_locations(&p, locations());
        let t = top(&r, Measure::Alloc);
        assert_eq!(t.total_bytes, 103_000);
        assert_eq!(t.total_samples, 3);
        assert_eq!(t.rows[0].site.function, "grow_table");
        assert_eq!(t.rows[0].samples, 2);
        assert_eq!(t.rows[1].site.function, "parse");
        let text = format_top(&t, &p, 10);
        assert!(text.contains("cumulative allocation"), "{text}");
        assert!(text.contains("97.1%"), "{text}");
    }

    #[test]
    fn call_sites_skip_the_language_runtime() {
        let p = Profile {
            live: vec![
                live(16, 1600, &[1, 40, 30]),
                live(16, 400, &[50, 51, 30]),
                live(16, 100, &[1, 50]),
            ],
            ..Profile::default()
        };
        let r = Resolved::with_locations(&p, locations());
        let t = top(&r, Measure::Live);
        let got: Vec<(&str, String, u64)> = t
            .rows
            .iter()
            .map(|r| (r.site.function.as_str(), r.site.file_line(), r.bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                ("fill", "fill.cc:12".into(), 1600),
                ("app::load", "src/load.rs:20".into(), 400),
                // nothing but the runtime: its innermost frame
                (
                    "alloc::raw_vec::RawVec<T,A>::grow_one",
                    "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/alloc/src/raw_vec/mod.rs:340".into(),
                    100
                ),
            ]
        );
        // flame graphs keep the runtime's frames
        let c = collapse(&r, Measure::Live);
        assert!(
            c.iter().any(|(stack, b)| *b == 1600
                && stack == "main;fill;void std::vector<int>::_M_realloc_insert<int const&>();std::_Vector_base<int, std::allocator<int> >::_M_allocate(unsigned long)"),
            "{c:?}"
        );
        let mut in_libstdcxx = named("std::__throw_bad_alloc()", "", 0);
        in_libstdcxx.object = Some("/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30".into());
        assert!(is_runtime_frame(&in_libstdcxx));
        assert!(!is_runtime_frame(&named("main", "main.c", 1)));
    }

    #[test]
    fn diff_orders_by_growth() {
        let old = profile_a();
        let mut new = profile_a();
        new.live[0].weight = 26_000; // parse:42 +20000
        new.live[2].weight = 500; // parse:57 -1000
        new.live.push(live(8, 4000, &[30])); // main, new site
        let (ro, rn) = (
            Resolved::with_locations(&old, locations()),
            Resolved::with_locations(&new, locations()),
        );
        let (to, tn) = (top(&ro, Measure::Live), top(&rn, Measure::Live));
        let rows = diff(&to, &tn);
        let got: Vec<(&str, i128)> = rows
            .iter()
            .map(|r| (r.site.function.as_str(), r.delta()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("parse", 20_000),
                ("main", 4000),
                ("grow_table", 0),
                ("parse", -1000)
            ]
        );
        assert_eq!((rows[0].old, rows[0].new), (8000, 28_000));
        let text = format_diff(&rows, &to, &tn, 10);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].contains("+19.5 KiB (+20000)") && lines[2].contains("parse.c:42"),
            "{text}"
        );
        assert!(lines[3].contains("main"), "{text}");
        assert!(lines[4].contains("(-1000)"), "{text}");
        assert!(
            !text.contains("grow_table"),
            "unchanged sites are not shown: {text}"
        );
        assert!(
            text.contains("delta +22.5 KiB (+23000 bytes); 3 of 4 call sites changed"),
            "{text}"
        );
    }

    #[test]
    fn collapsed_stacks_root_first() {
        let p = profile_a();
        let r = Resolved::with_locations(&p, locations());
        let c = collapse(&r, Measure::Live);
        assert_eq!(
            c,
            vec![
                ("main;cache_put;grow_table".to_string(), 500),
                ("main;parse".to_string(), 9500),
            ]
        );
        let mut odd = named("f;g\n", "", 0);
        odd.function.push(' ');
        assert_eq!(collapsed_name(&odd), "f:g");
    }

    #[test]
    fn empty_stack_and_unknown_addresses() {
        let p = Profile {
            live: vec![live(10, 100, &[]), live(10, 50, &[0xdead])],
            ..Profile::default()
        };
        let r = Resolved::with_locations(&p, HashMap::new());
        let t = top(&r, Measure::Live);
        let names: Vec<&str> = t.rows.iter().map(|r| r.site.function.as_str()).collect();
        assert_eq!(names, vec!["(no frames)", "0xdead"]);
    }
}
