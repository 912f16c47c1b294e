//! The profile as pprof's `profile.proto` (gzipped), symbolised, so that `pprof` and
//! `go tool pprof` show names, files and lines without the binaries.

use std::collections::HashMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;

use crate::profile::Profile;
use crate::report::{ALLOCATOR_FUNCTIONS, ALLOCATOR_PREFIXES, Resolved};

// The messages of github.com/google/pprof/proto/profile.proto, field numbers as there.

#[derive(Clone, PartialEq, Message)]
pub struct PbProfile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<PbMapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<PbLocation>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbMapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct PbLocation {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
    #[prost(int64, tag = "3")]
    pub column: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// The sample types, in the order of each sample's values.
pub const SAMPLE_TYPES: [(&str, &str); 4] = [
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
];

#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.get(""); // index 0 is the empty string
        s
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// A regular expression (RE2, fully matched by pprof) for the allocator frames, which pprof
/// drops with everything they call.
fn drop_frames_regex() -> String {
    let esc = |s: &str| {
        s.chars()
            .flat_map(|c| {
                let special = "\\.+*?()|[]{}^$".contains(c);
                special
                    .then_some('\\')
                    .into_iter()
                    .chain(std::iter::once(c))
            })
            .collect::<String>()
    };
    let mut alts: Vec<String> = ALLOCATOR_PREFIXES
        .iter()
        .map(|p| format!("{}.*", esc(p)))
        .collect();
    alts.extend(ALLOCATOR_FUNCTIONS.iter().map(|f| esc(f)));
    alts.join("|")
}

/// Builds the pprof message: one sample per distinct stack, with all four values.
pub fn build(resolved: &Resolved<'_>) -> PbProfile {
    let profile: &Profile = resolved.profile;
    let mut strings = Strings::new();
    let sample_type = SAMPLE_TYPES
        .iter()
        .map(|(t, u)| ValueType {
            r#type: strings.get(t),
            unit: strings.get(u),
        })
        .collect();

    // profile.proto: "mapping[0] will be the main binary"; the map lines keep their order
    // otherwise. `slot[i]` is the place of map line i.
    let is_exe = |path: &str| profile.exe.as_deref() == Some(path);
    let mut order: Vec<usize> = (0..profile.maps.len()).collect();
    order.sort_by_key(|&i| !is_exe(&profile.maps[i].path));
    let mut slot = vec![0; profile.maps.len()];
    for (place, &i) in order.iter().enumerate() {
        slot[i] = place;
    }
    let mut mapping: Vec<PbMapping> = order
        .iter()
        .enumerate()
        .map(|(place, &i)| {
            let m = &profile.maps[i];
            PbMapping {
                id: place as u64 + 1,
                memory_start: m.start,
                memory_limit: m.end,
                file_offset: m.offset,
                filename: strings.get(&m.path),
                ..PbMapping::default()
            }
        })
        .collect();

    // locations and functions, numbered by first appearance
    let mut functions: Vec<Function> = Vec::new();
    let mut function_ids: HashMap<(String, String, String), u64> = HashMap::new();
    let mut locations: Vec<PbLocation> = Vec::new();
    let mut location_ids: HashMap<u64, u64> = HashMap::new();
    let all_stacks = profile
        .live
        .iter()
        .map(|s| &s.frames)
        .chain(profile.alloc.iter().map(|s| &s.frames));
    for frames in all_stacks {
        for &a in frames {
            if location_ids.contains_key(&a) {
                continue;
            }
            let loc = &resolved.locations[&a];
            let mut lines = Vec::new();
            for f in &loc.frames {
                let system = f.system_name.clone().unwrap_or_else(|| f.function.clone());
                let file = f.file.clone().unwrap_or_default();
                let key = (f.function.clone(), system.clone(), file.clone());
                let next_id = functions.len() as u64 + 1;
                let id = *function_ids.entry(key).or_insert_with(|| {
                    functions.push(Function {
                        id: next_id,
                        name: strings.get(&f.function),
                        system_name: strings.get(&system),
                        filename: strings.get(&file),
                        start_line: 0,
                    });
                    next_id
                });
                lines.push(Line {
                    function_id: id,
                    line: i64::from(f.line.unwrap_or(0)),
                    column: 0,
                });
            }
            if let Some(mi) = loc.mapping {
                let m = &mut mapping[slot[mi]];
                let named = loc.frames.iter().any(|f| f.named);
                m.has_functions |= named;
                m.has_filenames |= loc.frames.iter().any(|f| f.file.is_some());
                m.has_line_numbers |= loc.frames.iter().any(|f| f.line.is_some());
                m.has_inline_frames |= named;
            }
            let id = locations.len() as u64 + 1;
            locations.push(PbLocation {
                id,
                mapping_id: loc.mapping.map_or(0, |i| slot[i] as u64 + 1),
                address: a,
                line: lines,
                is_folded: false,
            });
            location_ids.insert(a, id);
        }
    }

    // values per distinct stack: [alloc_objects, alloc_space, inuse_objects, inuse_space]
    let mut order: Vec<&Vec<u64>> = Vec::new();
    let mut values: HashMap<&Vec<u64>, [f64; 4]> = HashMap::new();
    let live = profile
        .live
        .iter()
        .map(|s| (&s.frames, 2, s.objects(), s.weight));
    let alloc = profile
        .alloc
        .iter()
        .map(|s| (&s.frames, 0, s.objects(profile.rate), s.weight));
    for (frames, i, objects, bytes) in live.chain(alloc) {
        let v = values.entry(frames).or_insert_with(|| {
            order.push(frames);
            [0.0; 4]
        });
        v[i] += objects;
        v[i + 1] += bytes as f64;
    }
    let sample = order
        .iter()
        .map(|frames| Sample {
            location_id: frames.iter().map(|a| location_ids[a]).collect(),
            value: values[frames].iter().map(|v| v.round() as i64).collect(),
            label: Vec::new(),
        })
        .collect();

    let mut comment = Vec::new();
    if let Some(pid) = profile.pid {
        comment.push(strings.get(&format!("pid {pid}")));
    }
    if let Some(exe) = &profile.exe {
        comment.push(strings.get(&format!("exe {exe}")));
    }
    if !profile.complete {
        comment.push(strings.get("the dump was cut short (no end line)"));
    }
    let period_type = Some(ValueType {
        r#type: strings.get("space"),
        unit: strings.get("bytes"),
    });
    let drop_frames = strings.get(&drop_frames_regex());
    let default_sample_type = strings.get("inuse_space");
    PbProfile {
        sample_type,
        sample,
        mapping,
        location: locations,
        function: functions,
        string_table: strings.table,
        drop_frames,
        keep_frames: 0,
        time_nanos: 0,
        duration_nanos: 0,
        period_type,
        period: profile.rate as i64,
        comment,
        default_sample_type,
    }
}

/// The message, gzipped, as pprof reads it.
pub fn encode_gz(p: &PbProfile) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&p.encode_to_vec())?;
    gz.finish()
}

/// Reads back what [`encode_gz`] wrote.
pub fn decode_gz(bytes: &[u8]) -> anyhow::Result<PbProfile> {
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut raw)?;
    Ok(PbProfile::decode(raw.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{locations, profile_a};

    fn s(p: &PbProfile, i: i64) -> &str {
        &p.string_table[i as usize]
    }

    #[test]
    fn round_trip_with_totals_and_symbols() {
        let prof = profile_a();
        let r = Resolved::with_locations(&prof, locations());
        let gz = encode_gz(&build(&r)).unwrap();
        assert_eq!(&gz[..2], b"\x1f\x8b");
        let p = decode_gz(&gz).unwrap();
        assert_eq!(s(&p, 0), "");
        let types: Vec<(&str, &str)> = p
            .sample_type
            .iter()
            .map(|t| (s(&p, t.r#type), s(&p, t.unit)))
            .collect();
        assert_eq!(types, SAMPLE_TYPES.to_vec());
        assert_eq!(s(&p, p.default_sample_type), "inuse_space");
        assert_eq!(p.period, 1000);
        assert!(s(&p, p.drop_frames).contains("operator new.*"));
        assert_eq!(s(&p, p.comment[0]), "pid 7");

        let mut totals = [0i64; 4];
        for sample in &p.sample {
            assert_eq!(sample.value.len(), 4);
            for (t, v) in totals.iter_mut().zip(&sample.value) {
                *t += v;
            }
        }
        assert_eq!(totals[1], 103_000, "alloc_space");
        assert_eq!(totals[2], 160, "inuse_objects");
        assert_eq!(totals[3], 10_000, "inuse_space");
        // the stack [1, 10, 30] appears once, with its live values
        assert_eq!(p.sample.len(), 6);

        let func = |id: u64| p.function.iter().find(|f| f.id == id).unwrap();
        let loc = |addr: u64| p.location.iter().find(|l| l.address == addr).unwrap();
        let names = |addr: u64| -> Vec<(String, i64)> {
            loc(addr)
                .line
                .iter()
                .map(|l| (s(&p, func(l.function_id).name).to_string(), l.line))
                .collect()
        };
        assert_eq!(
            names(20),
            vec![("grow_table".into(), 7), ("cache_put".into(), 90)]
        );
        assert_eq!(names(10), vec![("parse".into(), 42)]);
        assert_eq!(s(&p, func(loc(10).line[0].function_id).filename), "parse.c");
        // both lines of parse share one Function
        assert_eq!(loc(10).line[0].function_id, loc(11).line[0].function_id);
        for sample in &p.sample {
            for id in &sample.location_id {
                assert!(p.location.iter().any(|l| l.id == *id));
            }
        }
        let first = &p.sample[0];
        let addrs: Vec<u64> = first
            .location_id
            .iter()
            .map(|id| p.location.iter().find(|l| l.id == *id).unwrap().address)
            .collect();
        assert_eq!(addrs, vec![1, 10, 30]);
        assert_eq!(first.value, vec![0, 0, 60, 6000]);
    }

    #[test]
    fn mappings_carry_the_map_lines() {
        let mut prof = profile_a();
        prof.exe = Some("/bin/prog".into());
        prof.maps.push(crate::profile::Mapping {
            start: 0x7f00_0000_0000,
            end: 0x7f00_0010_0000,
            offset: 0,
            path: "/lib/libc.so.6".into(),
        });
        prof.maps.push(crate::profile::Mapping {
            start: 0x1000,
            end: 0x9000,
            offset: 0x2000,
            path: "/bin/prog".into(),
        });
        let mut locs = locations();
        locs.get_mut(&10).unwrap().mapping = Some(1);
        locs.get_mut(&2).unwrap().mapping = Some(0);
        let r = Resolved::with_locations(&prof, locs);
        let p = build(&r);
        assert_eq!(p.mapping.len(), 2);
        // the executable first
        let m = &p.mapping[0];
        assert_eq!(
            (m.id, m.memory_start, m.memory_limit, m.file_offset),
            (1, 0x1000, 0x9000, 0x2000)
        );
        assert_eq!(p.string_table[m.filename as usize], "/bin/prog");
        assert!(m.has_functions && m.has_filenames && m.has_line_numbers);
        let l = p.location.iter().find(|l| l.address == 10).unwrap();
        assert_eq!(l.mapping_id, 1);
        let libc = &p.mapping[1];
        assert_eq!((libc.id, libc.memory_start), (2, 0x7f00_0000_0000));
        assert_eq!(p.string_table[libc.filename as usize], "/lib/libc.so.6");
        let l = p.location.iter().find(|l| l.address == 2).unwrap();
        assert_eq!(l.mapping_id, 2);
    }
}
