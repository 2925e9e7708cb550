//! The launcher: finds a libtorch this build can use, then execs the REPL beside it.
//!
//! Shipped binaries (scripts/gpu-bundle.sh) are `augwise` (this launcher) and `augwise-repl`
//! (the REPL, which links libtorch); in a cargo build they are `augwise-launch` and `augwise`,
//! so `cargo run --bin augwise` stays the REPL itself.
//!
//! The REPL binary links libtorch dynamically with a RUNPATH baked in at build time. On
//! another machine (a GPU host with its own PyTorch, an air-gapped cluster) that directory is
//! missing and the dynamic loader would stop the program before `main` with "cannot open
//! shared object file". This launcher links no libtorch, so it always starts: it takes
//! `AUGWISE_LIBTORCH` when set (and only it), else the build's own directory, else the active
//! Python's torch (`AUGWISE_PYTHON` or `python3`) — the first whose version matches the one this build was compiled against,
//! puts it first on `LD_LIBRARY_PATH` and replaces itself with the REPL (same PID, same
//! terminal, signals unchanged). `augwise device` then reports the library that actually
//! loaded and why it was chosen.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The libtorch directory the build linked against.
const BUILT_LIB: &str = env!("AUGWISE_TORCH_LIB");
/// The torch wheel's version at build time (`2.11.0+cu130`); only the release must match.
const BUILT_VERSION: &str = env!("AUGWISE_TORCH_VERSION");
/// Set for the REPL: which directory was chosen and why (`augwise device` prints it).
const CHOSEN_VAR: &str = "AUGWISE_LIBTORCH_CHOSEN";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let repl = match repl_binary() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("augwise: {e}");
            return ExitCode::from(2);
        }
    };
    let mut tried = Vec::new();
    let Some((dir, why)) = choose(&mut tried) else {
        eprintln!(
            "augwise: no libtorch {} found. Tried:\n{}\nSet AUGWISE_LIBTORCH to a torch {} `lib` directory (e.g. \
             <site-packages>/torch/lib), activate a Python whose torch is {}, or run scripts/setup.sh.",
            release(BUILT_VERSION),
            tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n"),
            release(BUILT_VERSION),
            release(BUILT_VERSION),
        );
        return ExitCode::from(2);
    };
    let mut path = OsString::from(&dir);
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|o| !o.is_empty()) {
        path.push(":");
        path.push(old);
    }
    let err = Command::new(&repl)
        .args(args)
        .env("LD_LIBRARY_PATH", path)
        .env(CHOSEN_VAR, format!("{} ({why})", dir.display()))
        .exec();
    eprintln!("augwise: could not start {}: {err}", repl.display());
    ExitCode::from(2)
}

/// The REPL next to this launcher: `augwise-repl` (shipped), else `augwise` (a cargo build).
fn repl_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    let mine = me.file_name().map(|n| n.to_os_string());
    ["augwise-repl", "augwise"]
        .iter()
        .map(|name| me.with_file_name(name))
        .find(|p| p.is_file() && p.file_name().map(|n| n.to_os_string()) != mine)
        .ok_or_else(|| {
            format!(
                "no augwise-repl beside {}: the launcher only finds libtorch and starts the REPL; keep both binaries together",
                me.display()
            )
        })
}

/// First usable libtorch directory with the reason it was picked; `tried` collects refusals.
/// Python is asked last, and only when needed (it costs a process start).
fn choose(tried: &mut Vec<String>) -> Option<(PathBuf, String)> {
    let mut try_one = |dir: PathBuf, why: String| match check(&dir) {
        Ok(lib) => Some((lib, why)),
        Err(e) => {
            tried.push(format!("{} ({why}): {e}", dir.display()));
            None
        }
    };
    // An explicit choice is the only candidate: falling back behind the user's back would
    // hide a typo.
    if let Some(d) = std::env::var_os("AUGWISE_LIBTORCH").filter(|d| !d.is_empty()) {
        return try_one(PathBuf::from(d), "AUGWISE_LIBTORCH".into());
    }
    if !BUILT_LIB.is_empty() {
        if let Some(found) = try_one(
            PathBuf::from(BUILT_LIB),
            "the directory this build linked against".into(),
        ) {
            return Some(found);
        }
    }
    match python_torch() {
        Ok((py, dir)) => try_one(dir, format!("the torch of {py}")),
        Err(e) => {
            tried.push(e);
            None
        }
    }
}

/// `dir` itself or its `lib/` holding libtorch_cpu.so of the built release.
fn check(dir: &Path) -> Result<PathBuf, String> {
    let lib = if dir.join("libtorch_cpu.so").is_file() {
        dir.to_path_buf()
    } else if dir.join("lib").join("libtorch_cpu.so").is_file() {
        dir.join("lib")
    } else {
        return Err("no libtorch_cpu.so there".into());
    };
    match torch_version(&lib) {
        Some(v) if release(&v) == release(BUILT_VERSION) => Ok(lib),
        Some(v) => Err(format!("torch {v}, but this build needs {}", release(BUILT_VERSION))),
        // A bare libtorch (no Python wheel around it) carries no version.py: trust the user.
        None => Ok(lib),
    }
}

/// `2.11.0` of `2.11.0+cu130`.
fn release(v: &str) -> &str {
    v.split('+').next().unwrap_or(v)
}

/// The wheel's `torch/version.py` next to `torch/lib`.
fn torch_version(lib: &Path) -> Option<String> {
    let text = std::fs::read_to_string(lib.parent()?.join("version.py")).ok()?;
    text.lines()
        .find(|l| l.starts_with("__version__"))
        .and_then(|l| l.split('\'').nth(1).map(str::to_owned))
}

/// Where the active Python's torch lives, found without importing it (fast, no CUDA init).
fn python_torch() -> Result<(String, PathBuf), String> {
    let py = std::env::var("AUGWISE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&py)
        .args([
            "-c",
            "import importlib.util as u, os; s = u.find_spec('torch'); print(os.path.dirname(s.origin) if s else '')",
        ])
        .output()
        .map_err(|e| format!("{py}: cannot run it ({e})"))?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || dir.is_empty() {
        return Err(format!("{py}: has no torch package"));
    }
    Ok((py, PathBuf::from(dir)))
}
