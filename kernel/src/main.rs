//! `augwise-kernel`: makes Jupyter ready for augwise notebooks in one command.
//!
//!   install [--prefix DIR]     evcxr_jupyter (pinned, if missing) + the "Rust (augwise)" kernelspec
//!   uninstall [--purge]        remove the kernelspec (and with --purge its build cache)
//!   doctor                     check every piece; say how to fix what is missing
//!   execute [--timeout S] [--out DIR] NOTEBOOK…
//!                              run notebooks headless (jupyter execute), fail on any error
//!                              cell or a notebook without charts

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use augwise_kernel::{
    cargo_install_dir, find_program, inspect, user_data_dir, Layout, DISPLAY_NAME, EVCXR_VERSION, KERNEL_NAME,
};
use clap::{Parser, Subcommand};

/// augwise-kernel — the augwise Jupyter kernel (evcxr). Without a command: `doctor`.
#[derive(Parser, Debug)]
#[command(name = "augwise-kernel", disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Print the version (and the evcxr_jupyter it installs).
    #[arg(short = 'V', long)]
    version: bool,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Install evcxr_jupyter (if missing) and the kernelspec.
    Install {
        /// Install the kernelspec under this prefix instead of the user's data directory.
        #[arg(long, value_name = "DIR")]
        prefix: Option<PathBuf>,
    },
    /// Remove the kernelspec.
    Uninstall {
        /// Also remove its build cache.
        #[arg(long)]
        purge: bool,
    },
    /// Check each piece and say how to fix what is missing.
    Doctor,
    /// Execute notebooks headless; fail on an error cell or a notebook without a chart.
    Execute {
        /// Seconds a cell may run.
        #[arg(long, default_value_t = 1800, value_name = "S")]
        timeout: u64,
        /// Where the executed copies go (default target/notebooks).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The notebooks (.ipynb).
        notebooks: Vec<PathBuf>,
    },
}

fn repo() -> Result<PathBuf> {
    let dir = std::env::var_os("AUGWISE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    dir.canonicalize()
        .with_context(|| format!("the augwise checkout {} is gone; set AUGWISE_ROOT to it", dir.display()))
}

fn libtorch() -> Result<PathBuf> {
    let lib = Path::new(augwise::device::TORCH_LIB_DIR);
    if !lib.join("libtorch_cpu.so").exists() {
        bail!(
            "libtorch is not at {} (it was when augwise-kernel was built); run scripts/setup.sh, then rebuild",
            lib.display()
        );
    }
    let root = lib.parent().unwrap_or(lib);
    Ok(root.canonicalize().unwrap_or_else(|_| root.to_path_buf()))
}

fn kernel_dir(prefix: Option<&Path>) -> Result<PathBuf> {
    let data = match prefix {
        Some(p) => p.join("share").join("jupyter"),
        None => user_data_dir().context("no HOME or JUPYTER_DATA_DIR: pass --prefix DIR")?,
    };
    Ok(data.join("kernels").join(KERNEL_NAME))
}

fn extra_bins() -> Vec<PathBuf> {
    cargo_install_dir().into_iter().collect()
}

/// The evcxr_jupyter binary, installed with `cargo install --locked` at the pinned version
/// when there is none.
fn evcxr() -> Result<PathBuf> {
    if let Some(p) = find_program("evcxr_jupyter", &extra_bins()) {
        return Ok(p);
    }
    let cargo = find_program("cargo", &extra_bins()).context("cargo is not on PATH: install Rust with rustup first")?;
    println!("installing evcxr_jupyter {EVCXR_VERSION} (cargo install --locked; about 5-10 minutes the first time)");
    let status = Command::new(&cargo)
        .args([
            "install",
            "evcxr_jupyter",
            "--locked",
            "--version",
            &format!("={EVCXR_VERSION}"),
        ])
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!(
            "`cargo install evcxr_jupyter --locked --version ={EVCXR_VERSION}` failed ({status}); see its output above"
        );
    }
    find_program("evcxr_jupyter", &extra_bins())
        .context("evcxr_jupyter was installed but is not on PATH or in ~/.cargo/bin")
}

/// The toolchain's `lib/rustlib/<host>/lib` (libstd-*.so), with the rustc next to `cargo`.
fn rust_lib(cargo: &Path) -> Option<PathBuf> {
    let rustc = cargo.with_file_name("rustc");
    let rustc = if rustc.is_file() { rustc } else { PathBuf::from("rustc") };
    let ask = |args: &[&str]| -> Option<String> {
        let out = Command::new(&rustc).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let sysroot = PathBuf::from(ask(&["--print", "sysroot"])?.trim());
    let host = ask(&["-vV"])?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))?;
    let lib = sysroot.join("lib").join("rustlib").join(host).join("lib");
    lib.is_dir().then_some(lib)
}

fn layout(prefix: Option<&Path>, evcxr: PathBuf) -> Result<Layout> {
    let cargo = find_program("cargo", &extra_bins())
        .context("cargo is not on PATH: evcxr compiles each cell with it; install Rust with rustup")?;
    Ok(Layout {
        repo: repo()?,
        libtorch: libtorch()?,
        evcxr,
        cargo_bin: cargo.parent().map(Path::to_path_buf).unwrap_or_default(),
        kernel_dir: kernel_dir(prefix)?,
        cache: augwise_kernel::cache_root().context("no HOME or XDG_CACHE_HOME for the build cache")?,
        rust_lib: rust_lib(&cargo),
    })
}

fn install(prefix: Option<&Path>) -> Result<()> {
    let evcxr = evcxr()?;
    let l = layout(prefix, evcxr)?;
    for f in l.install()? {
        println!("wrote {}", f.display());
    }
    println!(
        "installed the Jupyter kernel \"{DISPLAY_NAME}\" (name `{KERNEL_NAME}`): evcxr {}, libtorch {}, build cache {}",
        l.evcxr.display(),
        l.libtorch.display(),
        l.build_dir().display()
    );
    println!("its first start compiles augwise and tch (2½–5 minutes on 2 cores); later starts take seconds");
    Ok(())
}

fn build_dir_of(spec: &Option<serde_json::Value>) -> Option<PathBuf> {
    spec.as_ref()?["env"]["EVCXR_TMPDIR"].as_str().map(PathBuf::from)
}

fn uninstall(purge: bool) -> Result<()> {
    let dir = kernel_dir(None)?;
    let spec = dir.join("kernel.json");
    let spec_json: Option<serde_json::Value> = std::fs::read_to_string(&spec)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match &spec_json {
        Some(k) if k["display_name"] == DISPLAY_NAME => {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            println!("removed {}", dir.display());
        }
        Some(_) => bail!("{} is not augwise's kernelspec; left alone", spec.display()),
        None if spec.exists() => bail!("{} is not a readable kernelspec; left alone", spec.display()),
        None => println!("no augwise kernelspec at {}", dir.display()),
    }
    if purge {
        if let Some(cache) = build_dir_of(&spec_json) {
            if cache.exists() {
                std::fs::remove_dir_all(&cache).with_context(|| format!("removing {}", cache.display()))?;
                println!("removed the build cache {}", cache.display());
            }
        }
    }
    println!("evcxr_jupyter itself stays installed (`cargo uninstall evcxr_jupyter` removes it)");
    Ok(())
}

struct Check {
    what: &'static str,
    ok: bool,
    detail: String,
    fix: String,
}

fn jupyter() -> Option<PathBuf> {
    let venv = repo().ok()?.join(".venv").join("bin").join("jupyter");
    venv.is_file().then_some(venv).or_else(|| find_program("jupyter", &[]))
}

fn doctor() -> Vec<Check> {
    let mut v = Vec::new();
    let torch = libtorch();
    v.push(Check {
        what: "libtorch",
        ok: torch.is_ok(),
        detail: match &torch {
            Ok(p) => format!("{} (torch {})", p.display(), augwise::device::TORCH_VERSION),
            Err(e) => e.to_string(),
        },
        fix: "run scripts/setup.sh (the pinned torch wheel in .venv), then rebuild".into(),
    });
    let diag = augwise::device::Diagnostics::collect();
    v.push(Check {
        what: "device",
        ok: true,
        detail: diag.default_device.clone(),
        fix: String::new(),
    });
    let cargo = find_program("cargo", &extra_bins());
    v.push(Check {
        what: "cargo",
        ok: cargo.is_some(),
        detail: cargo
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not found".into()),
        fix: "install Rust with rustup (evcxr compiles each cell with cargo)".into(),
    });
    let evcxr = find_program("evcxr_jupyter", &extra_bins());
    v.push(Check {
        what: "evcxr_jupyter",
        ok: evcxr.is_some(),
        detail: evcxr
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not found on PATH or in ~/.cargo/bin".into()),
        fix: "augwise-kernel install".into(),
    });
    let jup = jupyter();
    v.push(Check {
        what: "jupyter",
        ok: jup.is_some(),
        detail: jup
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not found".into()),
        fix: "scripts/setup.sh puts nbclient in .venv; `make lab` adds JupyterLab".into(),
    });
    let spec_path = kernel_dir(None).map(|d| d.join("kernel.json"));
    let spec: Option<serde_json::Value> = spec_path
        .as_ref()
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok());
    let shown = spec_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    match &spec {
        None => v.push(Check {
            what: "kernelspec",
            ok: false,
            detail: format!("no {shown}"),
            fix: "augwise-kernel install".into(),
        }),
        Some(k) => {
            let exists = |key: &str| k["env"][key].as_str().map(|p| Path::new(p).exists()).unwrap_or(false);
            let argv_ok = k["argv"][0].as_str().map(|p| Path::new(p).is_file()).unwrap_or(false);
            let broken: Vec<&str> = [
                ("evcxr_jupyter", argv_ok),
                ("LIBTORCH", exists("LIBTORCH")),
                ("EVCXR_CONFIG_DIR", exists("EVCXR_CONFIG_DIR")),
            ]
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n)
            .collect();
            v.push(Check {
                what: "kernelspec",
                ok: broken.is_empty(),
                detail: if broken.is_empty() {
                    format!("{shown} (\"{DISPLAY_NAME}\")")
                } else {
                    format!("{shown}: {} point nowhere", broken.join(", "))
                },
                fix: "augwise-kernel install (rewrites it)".into(),
            });
            let cache = build_dir_of(&spec).unwrap_or_default();
            let warm = cache.join("target").exists();
            v.push(Check {
                what: "build cache",
                ok: true,
                detail: format!(
                    "{} ({})",
                    cache.display(),
                    if warm {
                        "warm: kernels start in seconds"
                    } else {
                        "cold: the first kernel start compiles tch, 2½–5 min"
                    }
                ),
                fix: String::new(),
            });
        }
    }
    v
}

fn execute(timeout: u64, out: Option<PathBuf>, notebooks: &[PathBuf]) -> Result<()> {
    let out = match out {
        Some(o) => o,
        None => repo()?.join("target").join("notebooks"),
    };
    if notebooks.is_empty() {
        bail!("no notebooks given: `augwise-kernel execute notebooks/*.ipynb`");
    }
    if let Some(other) = notebooks.iter().find(|n| n.extension().is_none_or(|e| e != "ipynb")) {
        bail!("`{}` is not a notebook (.ipynb)", other.display());
    }
    let jupyter = jupyter().context("jupyter is not installed: run scripts/setup.sh (nbclient in .venv)")?;
    if !kernel_dir(None)?.join("kernel.json").exists() {
        bail!("the augwise kernel is not installed: run `augwise-kernel install`");
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // The notebooks start new runs in `runs/` beside them, which refuse a directory that holds
    // one: the previous execution's runs move to `runs.previous` (replacing the one before).
    let runs = out.join("runs");
    if runs.exists() {
        let previous = out.join("runs.previous");
        if previous.exists() {
            std::fs::remove_dir_all(&previous).with_context(|| format!("removing {}", previous.display()))?;
        }
        std::fs::rename(&runs, &previous).with_context(|| format!("moving {} aside", runs.display()))?;
        println!("the previous execution's runs are in {}", previous.display());
    }
    let mut failed = Vec::new();
    for nb in notebooks {
        let name = nb.file_name().context("a notebook path names a file")?;
        let target = out.join(name);
        std::fs::copy(nb, &target).with_context(|| format!("copying {}", nb.display()))?;
        let started = std::time::Instant::now();
        println!("executing {} → {}", nb.display(), target.display());
        // The first start of a cold kernel compiles tch: a generous start-up timeout.
        let status = Command::new(&jupyter)
            .args([
                "execute",
                "--inplace",
                &format!("--kernel_name={KERNEL_NAME}"),
                &format!("--timeout={timeout}"),
                "--startup_timeout=2400",
            ])
            .arg(&target)
            .status()
            .context("running jupyter execute")?;
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&target)?)?;
        let seen = inspect(&doc)?;
        let verdict = if status.success() {
            seen.verdict()
        } else {
            Err(format!("jupyter execute failed ({status}); {:?}", seen.verdict().err()))
        };
        match verdict {
            Ok(()) => println!(
                "ok   {} in {:.0}s: {} code cells, {} SVG and {} PNG charts",
                name.to_string_lossy(),
                started.elapsed().as_secs_f64(),
                seen.code_cells,
                seen.svg,
                seen.png
            ),
            Err(why) => {
                println!("FAIL {}: {why}", name.to_string_lossy());
                failed.push(name.to_string_lossy().into_owned());
            }
        }
    }
    if !failed.is_empty() {
        bail!("{} notebook(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<ExitCode> {
    if cli.version {
        println!(
            "augwise-kernel {} (evcxr_jupyter {EVCXR_VERSION})",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(ExitCode::SUCCESS);
    }
    match cli.command.unwrap_or(Cmd::Doctor) {
        Cmd::Install { prefix } => install(prefix.as_deref())?,
        Cmd::Uninstall { purge } => uninstall(purge)?,
        Cmd::Doctor => {
            let mut all_ok = true;
            for c in doctor() {
                all_ok &= c.ok;
                println!(
                    "{} {:<14} {}",
                    if c.ok { "ok     " } else { "MISSING" },
                    c.what,
                    c.detail
                );
                if !c.ok {
                    println!("        fix: {}", c.fix);
                }
            }
            return Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Cmd::Execute {
            timeout,
            out,
            notebooks,
        } => execute(timeout, out, &notebooks)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // A wrong command or option: clap's message (with its did-you-mean) and exit code 2.
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
