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

    let mut mapping: Vec<PbMapping> = profile
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| PbMapping {
            id: i as u64 + 1,
            memory_start: m.start,
            memory_limit: m.end,
            file_offset: m.offset,
            filename: strings.get(&m.path),
            ..PbMapping::default()
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
                let m = &mut mapping[mi];
                let named = loc.frames.iter().any(|f| f.named);
                m.has_functions |= named;
                m.has_filenames |= loc.frames.iter().any(|f| f.file.is_some());
                m.has_line_numbers |= loc.frames.iter().any(|f| f.line.is_some());
                m.has_inline_frames |= named;
            }
            let id = locations.len() as u64 + 1;
            locations.push(PbLocation {
                id,
                mapping_id: loc.mapping.map_or(0, |i| i as u64 + 1),
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
