//! `augwise-kernel`: prepares Jupyter for augwise notebooks (evcxr kernel). For now it checks
//! the pieces a kernel needs and says how to fix what is missing; `install`/`uninstall` of the
//! kernelspec arrive with the notebook work (issue 6).

use std::path::Path;
use std::process::Command;

struct Check {
    what: &'static str,
    ok: bool,
    detail: String,
    fix: &'static str,
}

fn on_path(cmd: &str, arg: &str) -> Option<String> {
    let out = Command::new(cmd).arg(arg).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn checks() -> Vec<Check> {
    let lib = augwise::device::TORCH_LIB_DIR;
    let libtorch_ok = !lib.is_empty() && Path::new(lib).join("libtorch_cpu.so").exists();
    let diag = augwise::device::Diagnostics::collect();
    let evcxr = on_path("evcxr_jupyter", "--version");
    let jupyter = on_path("jupyter", "--version");
    vec![
        Check {
            what: "libtorch",
            ok: libtorch_ok,
            detail: format!("{lib} (torch {})", augwise::device::TORCH_VERSION),
            fix: "run scripts/setup.sh (installs the pinned torch wheel into .venv)",
        },
        Check {
            what: "device",
            ok: true,
            detail: diag.default_device.clone(),
            fix: "",
        },
        Check {
            what: "evcxr_jupyter",
            ok: evcxr.is_some(),
            detail: evcxr.unwrap_or_else(|| "not found on PATH".into()),
            fix: "cargo install evcxr_jupyter --locked",
        },
        Check {
            what: "jupyter",
            ok: jupyter.is_some(),
            detail: jupyter.map(|v| v.lines().next().unwrap_or("").to_owned()).unwrap_or_else(|| "not found on PATH".into()),
            fix: ".venv/bin/pip install jupyterlab nbclient",
        },
    ]
}

fn main() {
    let cmd = std::env::args().nth(1).unwrap_or_else(|| "doctor".into());
    match cmd.as_str() {
        "doctor" => {
            let mut all_ok = true;
            for c in checks() {
                all_ok &= c.ok;
                println!("{} {:<14} {}", if c.ok { "ok " } else { "MISSING" }, c.what, c.detail);
                if !c.ok {
                    println!("        fix: {}", c.fix);
                }
            }
            std::process::exit(if all_ok { 0 } else { 1 });
        }
        "--help" | "-h" | "help" => {
            println!("augwise-kernel doctor   check libtorch, device, evcxr_jupyter and jupyter; say how to fix what is missing");
        }
        other => {
            eprintln!("error: unknown command `{other}`; try `augwise-kernel doctor`");
            std::process::exit(2);
        }
    }
}
