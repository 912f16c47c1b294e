//! `xalloc-prof`: tables, flame graphs, pprof files and pictures from xalloc's heap profile and
//! heap map dumps (docs/profile-format.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use xalloc_prof::heapmap::{self, Figures, HeapMap};
use xalloc_prof::pprof;
use xalloc_prof::profile::Profile;
use xalloc_prof::report::{self, Measure, Resolved};
use xalloc_prof::symbolize::Symbolizer;

#[derive(Parser)]
#[command(
    name = "xalloc-prof",
    version,
    about = "Read xalloc's heap profiles (XALLOC_PROF_FILE, xa_prof_dump) and heap maps \
             (XALLOC_HEAPMAP_FILE, xa_heap_map)",
    after_help = "Frames are symbolised from the ELF files named by the profile's map lines \
                  (DWARF, also from separate debug files found by build-id or .gnu_debuglink; \
                  else the symbol tables; else PATH+0xOFFSET)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Symbols {
    /// Where separate debug files are looked for (DIR/.build-id/xx/yyyy.debug, DIR/<path>).
    #[arg(long, value_name = "DIR", default_value = "/usr/lib/debug")]
    debug_root: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// The call sites holding the most live memory: the program's innermost frames, skipping
    /// those of the allocator, operator new, libc's malloc wrappers and the C++ and Rust
    /// standard libraries.
    Top {
        /// A heap profile.
        file: PathBuf,
        /// Rows to show.
        #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 20)]
        n: usize,
        /// Rank by cumulative allocation (the alloc lines) instead of live memory.
        #[arg(long)]
        cum: bool,
        #[command(flatten)]
        symbols: Symbols,
    },
    /// A flame graph (SVG) of live memory by stack, root at the bottom.
    Flame {
        /// A heap profile.
        file: PathBuf,
        /// The SVG file to write.
        #[arg(short, long, value_name = "OUT.svg")]
        output: PathBuf,
        /// Cumulative allocation (the alloc lines) instead of live memory.
        #[arg(long)]
        cum: bool,
        /// Title of the graph.
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        symbols: Symbols,
    },
    /// Collapsed stacks (`outer;inner BYTES`, root first) on stdout, for flame graph tools.
    Collapse {
        /// A heap profile.
        file: PathBuf,
        /// Cumulative allocation (the alloc lines) instead of live memory.
        #[arg(long)]
        cum: bool,
        #[command(flatten)]
        symbols: Symbols,
    },
    /// Growth of live memory per call site from OLD to NEW: the leak-hunting view.
    Diff {
        /// The earlier heap profile.
        old: PathBuf,
        /// The later heap profile.
        new: PathBuf,
        /// Rows to show.
        #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 20)]
        n: usize,
        /// Compare cumulative allocation (the alloc lines) instead of live memory.
        #[arg(long)]
        cum: bool,
        #[command(flatten)]
        symbols: Symbols,
    },
    /// The profile in pprof's format (gzipped profile.proto), symbolised: `go tool pprof OUT`.
    Pprof {
        /// A heap profile.
        file: PathBuf,
        /// The file to write (.pb.gz).
        #[arg(short, long, value_name = "OUT.pb.gz")]
        output: PathBuf,
        #[command(flatten)]
        symbols: Symbols,
    },
    /// Figures of a heap map (live, resident, purged bytes, waste per size class, external
    /// fragmentation) and a picture of its arenas, page by page.
    Heapmap {
        /// A heap map.
        file: PathBuf,
        /// The picture to write: PNG if the name ends in .png, else SVG.
        #[arg(
            short,
            long,
            value_name = "OUT.svg|OUT.png",
            required_unless_present = "text_only"
        )]
        output: Option<PathBuf>,
        /// Print the figures only.
        #[arg(long, conflicts_with = "output")]
        text_only: bool,
    },
}

fn warn(file: &Path, warnings: &[String]) {
    for w in warnings {
        eprintln!("xalloc-prof: {}: {w}", file.display());
    }
}

fn read_profile(file: &Path) -> Result<Profile> {
    let p = Profile::read(file)?;
    warn(file, &p.warnings);
    Ok(p)
}

fn symbolizer(s: &Symbols) -> Symbolizer {
    Symbolizer::new().with_debug_root(&s.debug_root)
}

fn flush_symbol_warnings(sym: &mut Symbolizer) {
    for w in sym.take_warnings() {
        eprintln!("xalloc-prof: {w}");
    }
}

fn measure(cum: bool) -> Measure {
    if cum { Measure::Alloc } else { Measure::Live }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Top {
            file,
            n,
            cum,
            symbols,
        } => {
            let p = read_profile(&file)?;
            let mut sym = symbolizer(&symbols);
            let r = Resolved::new(&p, &mut sym);
            flush_symbol_warnings(&mut sym);
            let t = report::top(&r, measure(cum));
            print!("{}", report::format_top(&t, &p, n));
        }
        Command::Collapse { file, cum, symbols } => {
            let p = read_profile(&file)?;
            let mut sym = symbolizer(&symbols);
            let r = Resolved::new(&p, &mut sym);
            flush_symbol_warnings(&mut sym);
            for (stack, bytes) in report::collapse(&r, measure(cum)) {
                println!("{stack} {bytes}");
            }
        }
        Command::Flame {
            file,
            output,
            cum,
            title,
            symbols,
        } => {
            let p = read_profile(&file)?;
            let mut sym = symbolizer(&symbols);
            let r = Resolved::new(&p, &mut sym);
            flush_symbol_warnings(&mut sym);
            let m = measure(cum);
            let stacks = report::collapse(&r, m);
            if stacks.is_empty() {
                bail!("{}: no {} samples to draw", file.display(), m.describe());
            }
            let title = title.unwrap_or_else(|| {
                let exe = p.exe.as_deref().unwrap_or("");
                format!("xalloc {}: {exe}", m.describe())
            });
            let svg = xalloc_prof::flame::flame_svg(&stacks, &title)?;
            std::fs::write(&output, svg)
                .with_context(|| format!("writing {}", output.display()))?;
        }
        Command::Diff {
            old,
            new,
            n,
            cum,
            symbols,
        } => {
            let po = read_profile(&old)?;
            let pn = read_profile(&new)?;
            let mut sym = symbolizer(&symbols);
            let ro = Resolved::new(&po, &mut sym);
            let rn = Resolved::new(&pn, &mut sym);
            flush_symbol_warnings(&mut sym);
            let (to, tn) = (
                report::top(&ro, measure(cum)),
                report::top(&rn, measure(cum)),
            );
            let rows = report::diff(&to, &tn);
            print!("{}", report::format_diff(&rows, &to, &tn, n));
        }
        Command::Pprof {
            file,
            output,
            symbols,
        } => {
            let p = read_profile(&file)?;
            let mut sym = symbolizer(&symbols);
            let r = Resolved::new(&p, &mut sym);
            flush_symbol_warnings(&mut sym);
            let bytes = pprof::encode_gz(&pprof::build(&r))?;
            std::fs::write(&output, bytes)
                .with_context(|| format!("writing {}", output.display()))?;
        }
        Command::Heapmap {
            file,
            output,
            text_only,
        } => {
            let m = HeapMap::read(&file)?;
            warn(&file, &m.warnings);
            let fig = Figures::of(&m);
            print!("{}", fig.format(&m));
            if let (Some(out), false) = (output, text_only) {
                let w = heapmap::render(&m, &fig, &out)?;
                warn(&out, &w);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xalloc-prof: {e:#}");
            ExitCode::FAILURE
        }
    }
}
