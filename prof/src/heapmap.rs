//! The heap map dump (`xalloc-heap-map 1`, docs/profile-format.md): its figures and its picture.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::dump::{self, number, numbers};
use crate::units::human;

/// What a run of pages holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Meta,
    Slab {
        class: u64,
        block: u64,
        used: u64,
        capacity: u64,
    },
    Medium {
        bytes: u64,
    },
    FreeResident,
    FreePurged,
}

impl State {
    pub fn is_free(self) -> bool {
        matches!(self, State::FreeResident | State::FreePurged)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First page, counted from the arena's base.
    pub first: u64,
    pub count: u64,
    pub state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arena {
    pub index: u64,
    pub base: u64,
    pub pages: u64,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Huge {
    pub addr: u64,
    pub bytes: u64,
    pub mapped: u64,
}

#[derive(Debug, Clone, Default)]
pub struct HeapMap {
    pub version: u32,
    pub pid: Option<u64>,
    pub page: u64,
    pub arenas: Vec<Arena>,
    pub huge: Vec<Huge>,
    pub failed: u64,
    pub complete: bool,
    pub warnings: Vec<String>,
}

impl HeapMap {
    pub fn read(path: &Path) -> Result<HeapMap> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        HeapMap::parse(&String::from_utf8_lossy(&bytes))
            .with_context(|| format!("reading {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<HeapMap> {
        let lines = dump::split(text, "xalloc-heap-map", "heap map")?;
        let mut m = HeapMap {
            version: lines.version,
            page: 4096,
            complete: lines.complete,
            warnings: lines.warnings,
            ..HeapMap::default()
        };
        let mut saw_page = false;
        for (no, line) in lines.lines {
            let f: Vec<&str> = line.split(' ').filter(|s| !s.is_empty()).collect();
            if let Err(e) = m.parse_line(&f, &mut saw_page) {
                m.warnings
                    .push(format!("line {no}: {e}; line skipped: {line:?}"));
            }
        }
        if !saw_page {
            m.warnings
                .push("no `page` line: taking pages of 4096 bytes".into());
        }
        for a in &m.arenas {
            let mut next = 0;
            for r in &a.runs {
                if r.first != next {
                    m.warnings.push(format!(
                        "arena {}: a run starts at page {} where page {next} was expected",
                        a.index, r.first
                    ));
                }
                next = r.first + r.count;
            }
            if next != a.pages && !a.runs.is_empty() {
                m.warnings.push(format!(
                    "arena {}: the runs end at page {next}, the arena has {} pages",
                    a.index, a.pages
                ));
            }
        }
        Ok(m)
    }

    fn parse_line(&mut self, f: &[&str], saw_page: &mut bool) -> Result<(), String> {
        let need = |n: usize| -> Result<Vec<u64>, String> {
            if f.len() < n + 1 {
                return Err(format!("a {} line needs {n} fields", f[0]));
            }
            numbers(&f[1..=n])
        };
        match f[0] {
            "pid" => self.pid = Some(need(1)?[0]),
            "page" => {
                let p = need(1)?[0];
                if p == 0 {
                    return Err("page size 0".into());
                }
                self.page = p;
                *saw_page = true;
            }
            "arena" => {
                let n = need(3)?;
                self.arenas.push(Arena {
                    index: n[0],
                    base: n[1],
                    pages: n[2],
                    runs: Vec::new(),
                });
            }
            "run" => {
                let n = need(2)?;
                let state = match f.get(3).copied() {
                    Some("meta") => State::Meta,
                    Some("slab") => {
                        if f.len() < 8 {
                            return Err("a slab run needs CLASS BLOCK USED CAPACITY".into());
                        }
                        let s = numbers(&f[4..8])?;
                        State::Slab {
                            class: s[0],
                            block: s[1],
                            used: s[2],
                            capacity: s[3],
                        }
                    }
                    Some("medium") => State::Medium {
                        bytes: f
                            .get(4)
                            .and_then(|s| number(s))
                            .ok_or("a medium run needs BYTES")?,
                    },
                    Some("free-resident") => State::FreeResident,
                    Some("free-purged") => State::FreePurged,
                    Some(other) => return Err(format!("unknown run state {other:?}")),
                    None => return Err("a run line needs a state".into()),
                };
                let arena = self.arenas.last_mut().ok_or("a run before any arena")?;
                arena.runs.push(Run {
                    first: n[0],
                    count: n[1],
                    state,
                });
            }
            "huge" => {
                let n = need(3)?;
                self.huge.push(Huge {
                    addr: n[0],
                    bytes: n[1],
                    mapped: n[2],
                });
            }
            "failed" => self.failed = need(1)?[0],
            _ => {}
        }
        Ok(())
    }
}

/// Space figures of one arena (or of all of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpaceFigures {
    pub pages: u64,
    pub live_bytes: u64,
    /// Non-purged pages, in bytes.
    pub resident_bytes: u64,
    pub meta_bytes: u64,
    pub slab_bytes: u64,
    pub medium_bytes: u64,
    pub free_resident_bytes: u64,
    pub purged_bytes: u64,
    pub free_pages: u64,
    /// Largest stretch of adjacent free pages (resident or purged), in pages.
    pub largest_free_run: u64,
    /// `1 - largest_free_run / free_pages`; 0 with no free pages.
    pub external_fragmentation: f64,
}

/// Slab figures of one size class over all arenas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassFigures {
    pub block: u64,
    pub slabs: u64,
    pub used: u64,
    pub capacity: u64,
    /// Free blocks: `(CAPACITY - USED) * BLOCK`.
    pub free_block_bytes: u64,
    /// The run bytes too few for another block: `run bytes - CAPACITY * BLOCK`.
    pub tail_bytes: u64,
}

impl ClassFigures {
    pub fn waste(&self) -> u64 {
        self.free_block_bytes + self.tail_bytes
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub arenas: Vec<(u64, SpaceFigures)>,
    /// All arenas together.
    pub total: SpaceFigures,
    pub classes: BTreeMap<u64, ClassFigures>,
    pub huge_blocks: u64,
    pub huge_bytes: u64,
    pub huge_mapped: u64,
    /// Slab, medium and huge bytes in use.
    pub live_bytes: u64,
    /// Arena pages not purged, plus huge mappings.
    pub resident_bytes: u64,
    pub internal_waste: u64,
    pub failed: u64,
}

fn fragmentation(largest: u64, free: u64) -> f64 {
    if free == 0 {
        0.0
    } else {
        1.0 - largest as f64 / free as f64
    }
}

fn arena_figures(a: &Arena, page: u64, classes: &mut BTreeMap<u64, ClassFigures>) -> SpaceFigures {
    let mut s = SpaceFigures {
        pages: a.pages,
        ..SpaceFigures::default()
    };
    let mut stretch = 0; // free pages adjacent to the current run
    let mut next = None;
    for r in &a.runs {
        let bytes = r.count * page;
        if r.state.is_free() {
            // runs tile the arena; a gap breaks the stretch
            if next != Some(r.first) {
                stretch = 0;
            }
            stretch += r.count;
            s.free_pages += r.count;
            s.largest_free_run = s.largest_free_run.max(stretch);
        } else {
            stretch = 0;
        }
        next = Some(r.first + r.count);
        match r.state {
            State::Meta => s.meta_bytes += bytes,
            State::Slab {
                class,
                block,
                used,
                capacity,
            } => {
                s.slab_bytes += bytes;
                s.live_bytes += used * block;
                let c = classes.entry(class).or_default();
                c.block = block;
                c.slabs += 1;
                c.used += used;
                c.capacity += capacity;
                c.free_block_bytes += capacity.saturating_sub(used) * block;
                c.tail_bytes += bytes.saturating_sub(capacity * block);
            }
            State::Medium { bytes: b } => {
                s.medium_bytes += bytes;
                s.live_bytes += b;
            }
            State::FreeResident => s.free_resident_bytes += bytes,
            State::FreePurged => s.purged_bytes += bytes,
        }
    }
    s.resident_bytes = s.meta_bytes + s.slab_bytes + s.medium_bytes + s.free_resident_bytes;
    s.external_fragmentation = fragmentation(s.largest_free_run, s.free_pages);
    s
}

impl Figures {
    pub fn of(m: &HeapMap) -> Figures {
        let mut f = Figures {
            failed: m.failed,
            ..Figures::default()
        };
        for a in &m.arenas {
            let s = arena_figures(a, m.page, &mut f.classes);
            let t = &mut f.total;
            t.pages += s.pages;
            t.live_bytes += s.live_bytes;
            t.resident_bytes += s.resident_bytes;
            t.meta_bytes += s.meta_bytes;
            t.slab_bytes += s.slab_bytes;
            t.medium_bytes += s.medium_bytes;
            t.free_resident_bytes += s.free_resident_bytes;
            t.purged_bytes += s.purged_bytes;
            t.free_pages += s.free_pages;
            t.largest_free_run = t.largest_free_run.max(s.largest_free_run);
            f.arenas.push((a.index, s));
        }
        f.total.external_fragmentation =
            fragmentation(f.total.largest_free_run, f.total.free_pages);
        f.huge_blocks = m.huge.len() as u64;
        f.huge_bytes = m.huge.iter().map(|h| h.bytes).sum();
        f.huge_mapped = m.huge.iter().map(|h| h.mapped).sum();
        f.live_bytes = f.total.live_bytes + f.huge_bytes;
        f.resident_bytes = f.total.resident_bytes + f.huge_mapped;
        f.internal_waste = f.classes.values().map(ClassFigures::waste).sum();
        f
    }

    /// The figures as `key: value` lines (exact numbers; fragmentation with 4 decimals).
    pub fn format(&self, m: &HeapMap) -> String {
        let mut o = String::new();
        let mut kv = |k: &str, v: String| {
            let _ = writeln!(o, "{k}: {v}");
        };
        if let Some(pid) = m.pid {
            kv("pid", pid.to_string());
        }
        kv("page size", m.page.to_string());
        kv("arenas", m.arenas.len().to_string());
        kv("live bytes", self.live_bytes.to_string());
        kv("resident bytes", self.resident_bytes.to_string());
        kv(
            "free resident bytes",
            self.total.free_resident_bytes.to_string(),
        );
        kv("purged bytes", self.total.purged_bytes.to_string());
        kv("meta bytes", self.total.meta_bytes.to_string());
        kv("slab bytes", self.total.slab_bytes.to_string());
        kv("medium bytes", self.total.medium_bytes.to_string());
        kv("huge blocks", self.huge_blocks.to_string());
        kv("huge bytes", self.huge_bytes.to_string());
        kv("huge mapped bytes", self.huge_mapped.to_string());
        kv("internal waste bytes", self.internal_waste.to_string());
        kv("free pages", self.total.free_pages.to_string());
        kv(
            "largest free run pages",
            self.total.largest_free_run.to_string(),
        );
        kv(
            "external fragmentation",
            format!("{:.4}", self.total.external_fragmentation),
        );
        if self.failed != 0 {
            kv("failed bytes", self.failed.to_string());
        }
        for (i, a) in &self.arenas {
            let p = format!("arena {i}");
            kv(&format!("{p} pages"), a.pages.to_string());
            kv(&format!("{p} live bytes"), a.live_bytes.to_string());
            kv(&format!("{p} resident bytes"), a.resident_bytes.to_string());
            kv(
                &format!("{p} free resident bytes"),
                a.free_resident_bytes.to_string(),
            );
            kv(&format!("{p} purged bytes"), a.purged_bytes.to_string());
            kv(&format!("{p} free pages"), a.free_pages.to_string());
            kv(
                &format!("{p} largest free run pages"),
                a.largest_free_run.to_string(),
            );
            kv(
                &format!("{p} external fragmentation"),
                format!("{:.4}", a.external_fragmentation),
            );
        }
        for (class, c) in &self.classes {
            let _ = writeln!(
                o,
                "class {class} (BLOCK {}): used {}/{} slabs {} waste {} (free blocks {}, tails {})",
                c.block,
                c.used,
                c.capacity,
                c.slabs,
                c.waste(),
                c.free_block_bytes,
                c.tail_bytes
            );
        }
        o
    }

    /// One line for a picture's title.
    pub fn summary(&self) -> String {
        format!(
            "live {}, resident {}, free resident {}, purged {}, internal waste {}, external fragmentation {:.2}",
            human(self.live_bytes),
            human(self.resident_bytes),
            human(self.total.free_resident_bytes),
            human(self.total.purged_bytes),
            human(self.internal_waste),
            self.total.external_fragmentation
        )
    }
}

// ---- the picture ----

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Pages per row of an arena's grid.
pub const COLUMNS: u64 = 128;

const META: RGBColor = RGBColor(90, 90, 90);
const MEDIUM: RGBColor = RGBColor(230, 126, 34);
const FREE_RESIDENT: RGBColor = RGBColor(171, 221, 164);
const FREE_PURGED: RGBColor = RGBColor(242, 242, 242);
const SLAB_EMPTY: RGBColor = RGBColor(198, 219, 239);
const SLAB_FULL: RGBColor = RGBColor(8, 48, 107);
const HUGE: RGBColor = RGBColor(153, 52, 4);
const GRID: RGBColor = RGBColor(200, 200, 200);

fn slab_colour(used: u64, capacity: u64) -> RGBColor {
    let t = if capacity == 0 {
        0.0
    } else {
        (used as f64 / capacity as f64).clamp(0.0, 1.0)
    };
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(
        mix(SLAB_EMPTY.0, SLAB_FULL.0),
        mix(SLAB_EMPTY.1, SLAB_FULL.1),
        mix(SLAB_EMPTY.2, SLAB_FULL.2),
    )
}

fn colour(state: State) -> RGBColor {
    match state {
        State::Meta => META,
        State::Slab { used, capacity, .. } => slab_colour(used, capacity),
        State::Medium { .. } => MEDIUM,
        State::FreeResident => FREE_RESIDENT,
        State::FreePurged => FREE_PURGED,
    }
}

struct Layout {
    cell: i32,
    per_row: usize,
    grid_w: i32,
    grid_h: i32,
    width: u32,
    height: u32,
    arenas_top: i32,
    huge_top: i32,
    huge_rows: usize,
}

const MARGIN: i32 = 20;
const LABEL_H: i32 = 22;
const MAX_HUGE_ROWS: usize = 40;

fn layout(m: &HeapMap) -> Layout {
    let max_pages = m.arenas.iter().map(|a| a.pages).max().unwrap_or(0).max(1);
    let rows = max_pages.div_ceil(COLUMNS) as i32;
    // a 16384-page arena: 4-pixel cells, 512 x 512
    let cell = (512 / rows).clamp(1, 8);
    let grid_w = COLUMNS as i32 * cell;
    let grid_h = rows * cell;
    let per_row = m.arenas.len().clamp(1, 2);
    let arena_rows = m.arenas.len().div_ceil(per_row) as i32;
    let width = (MARGIN * 2 + per_row as i32 * grid_w + (per_row as i32 - 1) * MARGIN).max(900);
    let arenas_top = 100;
    let huge_top = arenas_top + arena_rows * (LABEL_H + grid_h + MARGIN);
    let huge_rows = m.huge.len().min(MAX_HUGE_ROWS) + usize::from(m.huge.len() > MAX_HUGE_ROWS);
    let height = huge_top
        + if m.huge.is_empty() {
            10
        } else {
            LABEL_H + huge_rows as i32 * 18 + MARGIN
        };
    Layout {
        cell,
        per_row,
        grid_w,
        grid_h,
        width: width as u32,
        height: height as u32,
        arenas_top,
        huge_top,
        huge_rows,
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    m: &HeapMap,
    fig: &Figures,
    l: &Layout,
    with_text: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let text =
        |s: &str, x: i32, y: i32, size: u32| -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
            if with_text {
                let style = ("sans-serif", size)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Top));
                root.draw(&Text::new(s.to_string(), (x, y), style))?;
            }
            Ok(())
        };
    let pid = m.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
    text(
        &format!(
            "xalloc heap map{pid}: {} arenas, pages of {} bytes",
            m.arenas.len(),
            m.page
        ),
        MARGIN,
        10,
        18,
    )?;
    text(&fig.summary(), MARGIN, 34, 13)?;

    // legend
    let legend: [(&str, RGBColor); 7] = [
        ("meta", META),
        ("slab, empty", SLAB_EMPTY),
        ("slab, full", SLAB_FULL),
        ("medium", MEDIUM),
        ("free, resident", FREE_RESIDENT),
        ("free, purged", FREE_PURGED),
        ("huge", HUGE),
    ];
    let mut x = MARGIN;
    for (name, c) in legend {
        root.draw(&Rectangle::new([(x, 60), (x + 14, 74)], c.filled()))?;
        root.draw(&Rectangle::new(
            [(x, 60), (x + 14, 74)],
            GRID.stroke_width(1),
        ))?;
        text(name, x + 18, 60, 12)?;
        x += 30 + 7 * name.len() as i32;
    }

    for (i, (a, (_, af))) in m.arenas.iter().zip(&fig.arenas).enumerate() {
        let x0 = MARGIN + (i % l.per_row) as i32 * (l.grid_w + MARGIN);
        let top = l.arenas_top + (i / l.per_row) as i32 * (LABEL_H + l.grid_h + MARGIN);
        text(
            &format!(
                "arena {} at {:#x}: {} pages, live {}, fragmentation {:.2}",
                a.index,
                a.base,
                a.pages,
                human(af.live_bytes),
                af.external_fragmentation
            ),
            x0,
            top,
            12,
        )?;
        let y0 = top + LABEL_H;
        let rows = a.pages.div_ceil(COLUMNS) as i32;
        root.draw(&Rectangle::new(
            [(x0 - 1, y0 - 1), (x0 + l.grid_w, y0 + rows * l.cell)],
            GRID.stroke_width(1),
        ))?;
        for r in &a.runs {
            let style = colour(r.state).filled();
            let (mut p, end) = (r.first, (r.first + r.count).min(a.pages));
            while p < end {
                let row = (p / COLUMNS) as i32;
                let col = (p % COLUMNS) as i32;
                let len = (end - p).min(COLUMNS - p % COLUMNS) as i32;
                let y = y0 + row * l.cell;
                root.draw(&Rectangle::new(
                    [
                        (x0 + col * l.cell, y),
                        (x0 + (col + len) * l.cell, y + l.cell),
                    ],
                    style,
                ))?;
                p += len as u64;
            }
            // a light line where a used run starts, so that neighbours stay apart
            if !r.state.is_free() && l.cell >= 3 && r.first < a.pages {
                let row = (r.first / COLUMNS) as i32;
                let col = (r.first % COLUMNS) as i32;
                let (x, y) = (x0 + col * l.cell, y0 + row * l.cell);
                root.draw(&PathElement::new(
                    vec![(x, y), (x, y + l.cell)],
                    WHITE.stroke_width(1),
                ))?;
            }
        }
    }

    if !m.huge.is_empty() {
        text(
            &format!(
                "huge blocks: {} ({} in use, {} mapped)",
                m.huge.len(),
                human(fig.huge_bytes),
                human(fig.huge_mapped)
            ),
            MARGIN,
            l.huge_top,
            13,
        )?;
        let max = m
            .huge
            .iter()
            .map(|h| h.mapped.max(h.bytes))
            .max()
            .unwrap_or(1)
            .max(1);
        let bar_w = (l.width as i32 - 2 * MARGIN - 360).max(100);
        for (i, h) in m.huge.iter().take(MAX_HUGE_ROWS).enumerate() {
            let y = l.huge_top + LABEL_H + i as i32 * 18;
            let w = |b: u64| ((b as f64 / max as f64) * bar_w as f64).round().max(1.0) as i32;
            root.draw(&Rectangle::new(
                [(MARGIN, y), (MARGIN + w(h.mapped), y + 14)],
                FREE_RESIDENT.filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(MARGIN, y), (MARGIN + w(h.bytes), y + 14)],
                HUGE.filled(),
            ))?;
            text(
                &format!(
                    "{:#x}: {} in use, {} mapped",
                    h.addr,
                    human(h.bytes),
                    human(h.mapped)
                ),
                MARGIN + bar_w + 10,
                y,
                12,
            )?;
        }
        if l.huge_rows > MAX_HUGE_ROWS {
            let y = l.huge_top + LABEL_H + MAX_HUGE_ROWS as i32 * 18;
            text(
                &format!("... and {} more", m.huge.len() - MAX_HUGE_ROWS),
                MARGIN,
                y,
                12,
            )?;
        }
    }
    root.present()
}

/// Fonts tried for the text of PNG pictures (SVG pictures name `sans-serif` and need none);
/// `XALLOC_PROF_FONT` names another.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
];

fn register_font() -> bool {
    let env = std::env::var("XALLOC_PROF_FONT").ok();
    for p in env
        .iter()
        .map(String::as_str)
        .chain(FONT_PATHS.iter().copied())
    {
        if let Ok(bytes) = std::fs::read(p) {
            // the font stays for the rest of the process
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Draws the heap map to `out`: PNG when its name ends in `.png`, else SVG. Returns warnings.
pub fn render(m: &HeapMap, fig: &Figures, out: &Path) -> Result<Vec<String>> {
    let l = layout(m);
    let mut warnings = Vec::new();
    let png = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if png {
        let font = register_font();
        if !font {
            warnings.push(
                "no TrueType font found (set XALLOC_PROF_FONT=/path/to/font.ttf): the PNG has no text; an SVG needs no font".into(),
            );
        }
        let root = BitMapBackend::new(out, (l.width, l.height)).into_drawing_area();
        if let Err(e) = draw(&root, m, fig, &l, font) {
            bail!("drawing {}: {e}", out.display());
        }
    } else {
        let root = SVGBackend::new(out, (l.width, l.height)).into_drawing_area();
        if let Err(e) = draw(&root, m, fig, &l, true) {
            bail!("drawing {}: {e}", out.display());
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const MAP: &str = "xalloc-heap-map 1
pid 99
page 4096
arena 0 0x7f0000000000 64
run 0 1 meta
run 1 8 slab 4 64 120 512
run 9 8 slab 7 112 100 292
run 17 2 medium 8192
run 19 5 free-resident
run 24 3 free-purged
run 27 1 slab 4 64 64 64
run 28 4 free-purged
run 32 32 free-purged
arena 1 0x7f0004000000 16
run 0 1 meta
some-future-line 1 2
run 1 15 free-resident
huge 0x7f1000000000 6000000 6004736
huge 0x7f2000000000 40000000 40001536
failed 40960
end
";

    fn value<'a>(text: &'a str, key: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
            .unwrap_or_else(|| panic!("no {key:?} in\n{text}"))
    }

    #[test]
    fn figures_of_a_hand_made_map() {
        let m = HeapMap::parse(MAP).unwrap();
        assert!(m.complete);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.arenas.len(), 2);
        assert_eq!(m.arenas[0].runs.len(), 9);
        assert_eq!(m.huge.len(), 2);
        let f = Figures::of(&m);
        let a0 = &f.arenas[0].1;
        assert_eq!(a0.live_bytes, 7680 + 11200 + 8192 + 4096);
        assert_eq!(a0.resident_bytes, 4096 + 17 * 4096 + 2 * 4096 + 5 * 4096);
        assert_eq!((a0.free_pages, a0.largest_free_run), (44, 36));
        assert!((a0.external_fragmentation - (1.0 - 36.0 / 44.0)).abs() < 1e-12);
        let a1 = &f.arenas[1].1;
        assert_eq!(
            (
                a1.free_pages,
                a1.largest_free_run,
                a1.external_fragmentation
            ),
            (15, 15, 0.0)
        );
        assert_eq!(f.live_bytes, 31_168 + 46_000_000);
        assert_eq!(f.resident_bytes, 102_400 + 65_536 + 6_004_736 + 40_001_536);
        assert_eq!(f.internal_waste, 25_088 + 21_504 + 64);

        let t = f.format(&m);
        assert_eq!(value(&t, "live bytes"), "46031168");
        assert_eq!(value(&t, "resident bytes"), "46174208");
        assert_eq!(value(&t, "free resident bytes"), "81920");
        assert_eq!(value(&t, "purged bytes"), "159744");
        assert_eq!(value(&t, "meta bytes"), "8192");
        assert_eq!(value(&t, "slab bytes"), "69632");
        assert_eq!(value(&t, "medium bytes"), "8192");
        assert_eq!(value(&t, "huge blocks"), "2");
        assert_eq!(value(&t, "huge mapped bytes"), "46006272");
        assert_eq!(value(&t, "internal waste bytes"), "46656");
        assert_eq!(value(&t, "free pages"), "59");
        assert_eq!(value(&t, "largest free run pages"), "36");
        assert_eq!(value(&t, "external fragmentation"), "0.3898");
        assert_eq!(value(&t, "arena 0 external fragmentation"), "0.1818");
        assert_eq!(value(&t, "arena 1 resident bytes"), "65536");
        assert_eq!(value(&t, "failed bytes"), "40960");
        assert!(t.contains("class 4 (BLOCK 64): used 184/576 slabs 2 waste 25088 (free blocks 25088, tails 0)\n"), "{t}");
        assert!(t.contains("class 7 (BLOCK 112): used 100/292 slabs 1 waste 21568 (free blocks 21504, tails 64)\n"), "{t}");
    }

    #[test]
    fn cut_short_and_untiled_maps_warn() {
        let m = HeapMap::parse(
            "xalloc-heap-map 1\npage 4096\narena 0 0x1000 8\nrun 0 1 meta\nrun 2 2 free-purged\nrun 4 1 bogus\nrun 4 2 slab 1 32",
        )
        .unwrap();
        assert!(!m.complete);
        let w = m.warnings.join("\n");
        assert!(w.contains("cut short"), "{w}");
        assert!(w.contains("page 2 where page 1 was expected"), "{w}");
        assert!(w.contains("unknown run state \"bogus\""), "{w}");
        assert!(w.contains("CLASS BLOCK USED CAPACITY"), "{w}");
        assert!(
            w.contains("the runs end at page 4, the arena has 8 pages"),
            "{w}"
        );
        let f = Figures::of(&m);
        // the gap before page 2 is not free
        assert_eq!((f.total.free_pages, f.total.largest_free_run), (2, 2));
        assert!(!f.format(&m).contains("failed"));
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("xalloc-prof-unit-{}-{name}", std::process::id()))
    }

    #[test]
    fn pictures_in_svg_and_png() {
        let m = HeapMap::parse(MAP).unwrap();
        let f = Figures::of(&m);
        let svg = temp("map.svg");
        let w = render(&m, &f, &svg).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let text = std::fs::read_to_string(&svg).unwrap();
        std::fs::remove_file(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..100]);
        assert!(text.contains("arena 0 at 0x7f0000000000: 64 pages"));
        assert!(text.contains("free, purged"));
        assert!(text.contains("0x7f2000000000: 38.1 MiB in use"));
        // the medium run's colour, and the slab full of blocks in the darkest blue
        assert!(text.contains("#E67E22"), "medium colour missing");
        assert!(text.contains("#08306B"), "full slab colour missing");

        let png = temp("map.png");
        render(&m, &f, &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        std::fs::remove_file(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 1000);
    }
}
