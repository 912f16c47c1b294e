//! Frame addresses to function names, files and lines.
//!
//! A frame address lies in a `map` line's file at a file offset; the `PT_LOAD` program header
//! whose file range holds that offset turns it into the ELF's virtual address, and `address - 1`
//! (frames are return addresses) is looked up: in the DWARF of the file or of its separate debug
//! file (found by build-id under `/usr/lib/debug/.build-id/`, or by `.gnu_debuglink` beside the
//! file, in its `.debug/` folder or under `/usr/lib/debug`), inlined calls included; else in its
//! ELF symbol tables; else the frame is named `PATH+0xOFFSET`. Objects are loaded once per path.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use addr2line::Loader;
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};

use crate::profile::Mapping;

/// One function of a location: with inlining, a return address stands for several.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name, or `PATH+0xOFFSET`, or `0xADDRESS` outside every mapping.
    pub function: String,
    /// The name as the object file has it (mangled), when it differs.
    pub system_name: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Path of the mapped file the address lies in.
    pub object: Option<String>,
    /// Whether `function` is a real name (from DWARF or a symbol table).
    pub named: bool,
    /// Whether this frame was inlined into the next one.
    pub inlined: bool,
}

impl Frame {
    pub(crate) fn unnamed(function: String, object: Option<String>) -> Frame {
        Frame {
            function,
            system_name: None,
            file: None,
            line: None,
            object,
            named: false,
            inlined: false,
        }
    }

    /// `file:line`, or the file alone, or "" when unknown.
    pub fn file_line(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) if l > 0 => format!("{f}:{l}"),
            (Some(f), _) => f.clone(),
            _ => String::new(),
        }
    }
}

/// What one frame address resolves to.
#[derive(Debug, Clone)]
pub struct Location {
    pub address: u64,
    /// Index into the profile's `map` lines.
    pub mapping: Option<usize>,
    /// Innermost first (inlined functions, then the function they were inlined into); never
    /// empty.
    pub frames: Vec<Frame>,
}

struct Segment {
    offset: u64,
    size: u64,
    vaddr: u64,
}

struct Sym {
    addr: u64,
    size: u64,
    name: String,
}

struct LoadedObject {
    segments: Vec<Segment>,
    /// Function symbols sorted by address (.symtab and .dynsym, and the debug file's .symtab).
    symbols: Vec<Sym>,
    dwarf: Option<Loader>,
}

impl LoadedObject {
    fn vaddr(&self, offset: u64) -> u64 {
        self.segments
            .iter()
            .find(|s| s.offset <= offset && offset < s.offset + s.size)
            .map_or(offset, |s| offset - s.offset + s.vaddr)
    }

    fn symbol(&self, probe: u64) -> Option<&Sym> {
        let i = self.symbols.partition_point(|s| s.addr <= probe);
        let s = self.symbols.get(i.checked_sub(1)?)?;
        (s.size == 0 || probe < s.addr + s.size).then_some(s)
    }
}

/// Symbolises frame addresses, caching loaded objects by path.
pub struct Symbolizer {
    objects: HashMap<String, Option<LoadedObject>>,
    debug_root: PathBuf,
    warnings: Vec<String>,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Symbolizer::new()
    }
}

impl Symbolizer {
    pub fn new() -> Symbolizer {
        Symbolizer {
            objects: HashMap::new(),
            debug_root: PathBuf::from("/usr/lib/debug"),
            warnings: Vec::new(),
        }
    }

    /// Where separate debug files are looked for (default `/usr/lib/debug`).
    pub fn with_debug_root(mut self, root: impl Into<PathBuf>) -> Symbolizer {
        self.debug_root = root.into();
        self
    }

    /// Files that could not be read, once each.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Resolves one frame address of a profile with these `map` lines.
    pub fn locate(&mut self, maps: &[Mapping], address: u64) -> Location {
        let Some(index) = maps
            .iter()
            .position(|m| m.start <= address && address < m.end)
        else {
            return Location {
                address,
                mapping: None,
                frames: vec![Frame::unnamed(format!("{address:#x}"), None)],
            };
        };
        let map = &maps[index];
        let offset = address - map.start + map.offset;
        let fallback = format!("{}+{offset:#x}", map.path);
        let object_path = Some(map.path.clone());
        let Some(obj) = self.object(&map.path) else {
            return Location {
                address,
                mapping: Some(index),
                frames: vec![Frame::unnamed(fallback, object_path)],
            };
        };
        // a return address: the call is the instruction before it
        let probe = obj.vaddr(offset).saturating_sub(1);
        let mut frames = Vec::new();
        let mut location = (None, None);
        if let Some(dwarf) = &obj.dwarf {
            if let Ok(mut iter) = dwarf.find_frames(probe) {
                while let Ok(Some(f)) = iter.next() {
                    let raw = f
                        .function
                        .as_ref()
                        .and_then(|n| n.raw_name().ok())
                        .map(|n| n.into_owned());
                    let name = f
                        .function
                        .as_ref()
                        .and_then(|n| n.demangle().ok())
                        .map(|n| n.into_owned());
                    let file = f.location.as_ref().and_then(|l| l.file).map(str::to_string);
                    let line = f.location.as_ref().and_then(|l| l.line);
                    frames.push(Frame {
                        named: name.is_some(),
                        system_name: raw.filter(|r| Some(r) != name.as_ref()),
                        function: name.unwrap_or_default(),
                        file,
                        line,
                        object: object_path.clone(),
                        inlined: true,
                    });
                }
            }
            if frames.is_empty() {
                if let Ok(Some(l)) = dwarf.find_location(probe) {
                    location = (l.file.map(str::to_string), l.line);
                }
            }
        }
        if let Some(last) = frames.last_mut() {
            last.inlined = false;
        }
        // DWARF without a name for the outermost function: take the symbol's
        if frames.is_empty() || frames.iter().all(|f| !f.named) {
            let (file, line) = match frames.first() {
                Some(f) => (f.file.clone(), f.line),
                None => location,
            };
            let frame = match obj.symbol(probe) {
                Some(sym) => {
                    let name = addr2line::demangle_auto(Cow::Borrowed(&sym.name), None);
                    Frame {
                        system_name: (name != sym.name).then(|| sym.name.clone()),
                        function: name.into_owned(),
                        file,
                        line,
                        object: object_path.clone(),
                        named: true,
                        inlined: false,
                    }
                }
                None => Frame {
                    file,
                    line,
                    ..Frame::unnamed(fallback.clone(), object_path.clone())
                },
            };
            frames = vec![frame];
        }
        for f in &mut frames {
            if f.function.is_empty() {
                f.function = fallback.clone();
            }
        }
        Location {
            address,
            mapping: Some(index),
            frames,
        }
    }

    fn object(&mut self, path: &str) -> Option<&LoadedObject> {
        if !self.objects.contains_key(path) {
            let loaded = match load_object(Path::new(path), &self.debug_root) {
                Ok(o) => Some(o),
                Err(e) => {
                    self.warnings.push(format!(
                        "{path}: {e}; its frames are shown as {path}+0xOFFSET"
                    ));
                    None
                }
            };
            self.objects.insert(path.to_string(), loaded);
        }
        self.objects.get(path).and_then(Option::as_ref)
    }
}

fn has_dwarf(file: &object::File<'_>) -> bool {
    file.section_by_name(".debug_info")
        .is_some_and(|s| s.size() > 0 && s.kind() != object::SectionKind::UninitializedData)
}

fn function_symbols(file: &object::File<'_>, out: &mut Vec<Sym>) {
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        if sym.kind() != SymbolKind::Text || sym.address() == 0 || !sym.is_definition() {
            continue;
        }
        if let Ok(name) = sym.name() {
            if !name.is_empty() {
                out.push(Sym {
                    addr: sym.address(),
                    size: sym.size(),
                    name: name.to_string(),
                });
            }
        }
    }
}

fn load_object(path: &Path, debug_root: &Path) -> Result<LoadedObject, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let file = object::File::parse(&*data).map_err(|e| format!("not an object file ({e})"))?;
    let segments = file
        .segments()
        .map(|s| {
            let (offset, size) = s.file_range();
            Segment {
                offset,
                size,
                vaddr: s.address(),
            }
        })
        .collect();
    let mut symbols = Vec::new();
    function_symbols(&file, &mut symbols);
    let dwarf_path = if has_dwarf(&file) {
        Some(path.to_path_buf())
    } else {
        find_debug_file(path, &file, debug_root)
    };
    let mut dwarf = None;
    if let Some(dp) = dwarf_path {
        if dp != path {
            if let Ok(dd) = std::fs::read(&dp) {
                if let Ok(df) = object::File::parse(&*dd) {
                    function_symbols(&df, &mut symbols);
                }
            }
        }
        dwarf = Loader::new(&dp).ok();
    }
    // sized symbols first at an address, so that a zero-sized alias does not hide them
    symbols.sort_by(|a, b| a.addr.cmp(&b.addr).then(b.size.cmp(&a.size)));
    symbols.dedup_by_key(|s| s.addr);
    Ok(LoadedObject {
        segments,
        symbols,
        dwarf,
    })
}

/// The separate debug file of `file` at `path`: by build-id, then by `.gnu_debuglink` (its CRC
/// checked) beside it, in `.debug/` beside it, and under the debug root.
fn find_debug_file(path: &Path, file: &object::File<'_>, debug_root: &Path) -> Option<PathBuf> {
    if let Ok(Some(id)) = file.build_id() {
        if id.len() >= 2 {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let p = debug_root
                .join(".build-id")
                .join(&hex[..2])
                .join(format!("{}.debug", &hex[2..]));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let (name, crc) = file.gnu_debuglink().ok().flatten()?;
    let name = Path::new(std::str::from_utf8(name).ok()?);
    let dir = path.parent()?;
    let mut candidates = vec![dir.join(name), dir.join(".debug").join(name)];
    if let Ok(rel) = dir.strip_prefix("/") {
        candidates.push(debug_root.join(rel).join(name));
    }
    candidates.into_iter().find(|c| {
        c.as_path() != path
            && std::fs::read(c).is_ok_and(|bytes| {
                let mut sum = flate2::Crc::new();
                sum.update(&bytes);
                sum.sum() == crc
            })
    })
}
