//! The augwise Jupyter kernel: evcxr_jupyter under a kernelspec of its own ("Rust (augwise)")
//! whose environment finds libtorch, keeps one persistent evcxr build directory (only the very
//! first start compiles tch) and preloads augwise. Plus the headless notebook runner CI uses,
//! and the check that an executed notebook has no error and does show charts.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The evcxr_jupyter release the kernel is built and tested with.
pub const EVCXR_VERSION: &str = "0.22.0";
/// The kernelspec's directory name (what `jupyter kernelspec list` and notebooks' metadata
/// call it): not `rust`, which evcxr's own `--install` rewrites.
pub const KERNEL_NAME: &str = "augwise";
pub const DISPLAY_NAME: &str = "Rust (augwise)";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("{0}")]
    Missing(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Notebook(String),
}

pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KernelError + '_ {
    move |source| KernelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where everything the kernelspec points at lives.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The augwise checkout (`:dep augwise = { path = … }`).
    pub repo: PathBuf,
    /// libtorch: the directory holding `lib/libtorch_cpu.so`.
    pub libtorch: PathBuf,
    /// The evcxr_jupyter binary.
    pub evcxr: PathBuf,
    /// The directory of `cargo` and `rustc` (evcxr compiles every cell with them).
    pub cargo_bin: PathBuf,
    /// The kernelspec directory (`…/jupyter/kernels/augwise`).
    pub kernel_dir: PathBuf,
    /// Where build caches go (`$XDG_CACHE_HOME/augwise`, else `~/.cache/augwise`).
    pub cache: PathBuf,
    /// The Rust toolchain's `lib` (libstd-*.so): evcxr loads each cell as a library linked to
    /// it and relies on a relative rpath that some home-directory layouts break.
    pub rust_lib: Option<PathBuf>,
}

impl Layout {
    /// evcxr's persistent build directory: kept across kernel starts so tch compiles once.
    /// Outside the checkout (cargo would take the generated crate for a stray member of
    /// augwise's workspace), one per checkout.
    pub fn build_dir(&self) -> PathBuf {
        let tag = self
            .repo
            .to_string_lossy()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
        self.cache.join(format!("evcxr-{:08x}", tag as u32))
    }

    /// `EVCXR_CONFIG_DIR`: `init.evcxr` and `prelude.rs`, run at every kernel start.
    pub fn config_dir(&self) -> PathBuf {
        self.kernel_dir.join("config")
    }

    /// The kernelspec's `kernel.json`.
    pub fn kernel_json(&self) -> Value {
        let mut lib = self.libtorch.join("lib").display().to_string();
        if let Some(r) = &self.rust_lib {
            lib = format!("{lib}:{}", r.display());
        }
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", self.cargo_bin.display());
        let mut env = json!({
            "LIBTORCH": self.libtorch,
            "LD_LIBRARY_PATH": lib,
            "EVCXR_TMPDIR": self.build_dir(),
            "EVCXR_CONFIG_DIR": self.config_dir(),
            "PATH": path,
        });
        // rustup and cargo find their toolchains through these when they are not the defaults.
        for var in ["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
            if let Ok(v) = std::env::var(var) {
                env[var] = json!(v);
            }
        }
        json!({
            "argv": [self.evcxr, "--control_file", "{connection_file}"],
            "display_name": DISPLAY_NAME,
            "language": "rust",
            "interrupt_mode": "message",
            "env": env,
            "metadata": {"augwise": {"repo": self.repo, "evcxr_version": EVCXR_VERSION}},
        })
    }

    /// `init.evcxr`: the first cell's worth of set-up, run at kernel start.
    pub fn init_evcxr(&self) -> String {
        format!(
            "// Written by `augwise-kernel install`; runs when the kernel starts.\n:opt 2\n:dep augwise = {{ path = {} }}\n",
            Value::String(self.repo.display().to_string())
        )
    }

    /// `prelude.rs`: in scope in every cell.
    pub fn prelude(&self) -> &'static str {
        "use augwise::prelude::*;\n"
    }

    /// Write the kernelspec and its config; returns the files written.
    pub fn install(&self) -> Result<Vec<PathBuf>, KernelError> {
        let config = self.config_dir();
        std::fs::create_dir_all(&config).map_err(io(&config))?;
        let files = [
            (
                self.kernel_dir.join("kernel.json"),
                serde_json::to_string_pretty(&self.kernel_json()).unwrap_or_default(),
            ),
            (config.join("init.evcxr"), self.init_evcxr()),
            (config.join("prelude.rs"), self.prelude().to_owned()),
        ];
        let mut written = Vec::new();
        for (path, text) in files {
            std::fs::write(&path, text).map_err(io(&path))?;
            written.push(path);
        }
        // evcxr resolves its crate's dependencies afresh; seeded with augwise's lockfile, the
        // kernel compiles the versions the tests ran with (cargo drops the entries it does
        // not need and adds evcxr's own crate).
        let (lock, seed) = (self.build_dir().join("Cargo.lock"), self.repo.join("Cargo.lock"));
        if !lock.exists() && seed.exists() {
            let dir = self.build_dir();
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            std::fs::copy(&seed, &lock).map_err(io(&lock))?;
            written.push(lock);
        }
        Ok(written)
    }
}

/// Jupyter's per-user data directory (`JUPYTER_DATA_DIR`, else `~/.local/share/jupyter`), as
/// every Jupyter install searches it.
pub fn user_data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("JUPYTER_DATA_DIR") {
        return Some(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".local").join("share").join("jupyter"))
}

/// The first `name` on `PATH`, then in the extra directories.
pub fn find_program(name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `$XDG_CACHE_HOME/augwise`, else `~/.cache/augwise`.
pub fn cache_root() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("augwise"))
}

/// `~/.cargo/bin` (or `$CARGO_HOME/bin`): where `cargo install` puts binaries.
pub fn cargo_install_dir() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin"))
}

// ---- executed notebooks ------------------------------------------------------------------

/// What an executed notebook shows: its error outputs and its charts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Executed {
    pub code_cells: usize,
    pub unexecuted: usize,
    pub errors: Vec<String>,
    pub svg: usize,
    pub png: usize,
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// Read an executed notebook (nbformat 4 JSON).
pub fn inspect(doc: &Value) -> Result<Executed, KernelError> {
    let cells = doc["cells"]
        .as_array()
        .ok_or_else(|| KernelError::Notebook("not a notebook: no `cells` list".into()))?;
    let mut e = Executed::default();
    for (i, cell) in cells.iter().enumerate() {
        if cell["cell_type"] != "code" || text_of(&cell["source"]).trim().is_empty() {
            continue;
        }
        e.code_cells += 1;
        if cell["execution_count"].is_null() {
            e.unexecuted += 1;
        }
        for out in cell["outputs"].as_array().into_iter().flatten() {
            match out["output_type"].as_str() {
                Some("error") => e.errors.push(format!(
                    "cell {}: {}: {}",
                    i + 1,
                    text_of(&out["ename"]),
                    text_of(&out["evalue"])
                )),
                // evcxr reports a cell's `?` error and a panic on stderr only, with an ok status
                // (jupyter execute passes them): any stderr counts as a failure here.
                Some("stream") if out["name"] == "stderr" => {
                    let text = text_of(&out["text"]);
                    if let Some(line) = text.lines().find(|l| !l.trim().is_empty()) {
                        e.errors.push(format!("cell {}: stderr: {line}", i + 1));
                    }
                }
                Some("execute_result" | "display_data") => {
                    let data = &out["data"];
                    let html = text_of(&data["text/html"]);
                    e.svg += html.matches("<svg").count() + usize::from(!data["image/svg+xml"].is_null());
                    e.png += html.matches("data:image/png;base64,").count() + usize::from(!data["image/png"].is_null());
                }
                _ => {}
            }
        }
    }
    Ok(e)
}

impl Executed {
    /// Every code cell ran, none failed, and at least one chart is there.
    pub fn verdict(&self) -> Result<(), String> {
        if !self.errors.is_empty() {
            return Err(format!(
                "{} error output(s): {}",
                self.errors.len(),
                self.errors.join("; ")
            ));
        }
        if self.unexecuted > 0 {
            return Err(format!(
                "{} of {} code cells did not run",
                self.unexecuted, self.code_cells
            ));
        }
        if self.svg + self.png == 0 {
            return Err("no SVG or PNG chart in any output".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            repo: "/src/augwise".into(),
            libtorch: "/src/augwise/.venv/libtorch".into(),
            evcxr: "/home/u/.cargo/bin/evcxr_jupyter".into(),
            cargo_bin: "/home/u/.cargo/bin".into(),
            kernel_dir: "/home/u/.local/share/jupyter/kernels/augwise".into(),
            cache: "/home/u/.cache/augwise".into(),
            rust_lib: Some("/home/u/.rustup/toolchains/stable/lib".into()),
        }
    }

    #[test]
    fn the_kernelspec_finds_libtorch_keeps_its_build_dir_and_preloads_augwise() {
        let l = layout();
        let k = l.kernel_json();
        assert_eq!(k["display_name"], "Rust (augwise)");
        assert_eq!(
            k["argv"],
            json!([
                "/home/u/.cargo/bin/evcxr_jupyter",
                "--control_file",
                "{connection_file}"
            ])
        );
        assert_eq!(k["env"]["LIBTORCH"], "/src/augwise/.venv/libtorch");
        assert_eq!(
            k["env"]["LD_LIBRARY_PATH"],
            "/src/augwise/.venv/libtorch/lib:/home/u/.rustup/toolchains/stable/lib"
        );
        let build = k["env"]["EVCXR_TMPDIR"].as_str().unwrap();
        assert!(
            build.starts_with("/home/u/.cache/augwise/evcxr-") && !build.starts_with("/src/augwise"),
            "{build}"
        );
        let other = Layout {
            repo: "/src/other".into(),
            ..layout()
        };
        assert_ne!(other.build_dir(), l.build_dir(), "one build directory per checkout");
        assert_eq!(
            k["env"]["EVCXR_CONFIG_DIR"],
            "/home/u/.local/share/jupyter/kernels/augwise/config"
        );
        assert!(k["env"]["PATH"].as_str().unwrap().starts_with("/home/u/.cargo/bin:"));
        assert_eq!(
            l.init_evcxr()
                .lines()
                .filter(|s| s.starts_with(":dep"))
                .collect::<Vec<_>>(),
            [":dep augwise = { path = \"/src/augwise\" }"]
        );
        assert!(l.prelude().contains("use augwise::prelude::*;"));

        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("Cargo.lock"), "# locked\n").unwrap();
        let l = Layout {
            kernel_dir: dir.path().join("kernels").join("augwise"),
            cache: dir.path().join("cache"),
            repo,
            ..l
        };
        let files = l.install().unwrap();
        assert_eq!(files.len(), 4);
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
        assert_eq!(back, l.kernel_json());
        // The build cache starts from augwise's lockfile, and a later install leaves it alone.
        assert_eq!(
            std::fs::read_to_string(l.build_dir().join("Cargo.lock")).unwrap(),
            "# locked\n"
        );
        std::fs::write(l.build_dir().join("Cargo.lock"), "# evcxr's own\n").unwrap();
        assert_eq!(l.install().unwrap().len(), 3);
        assert_eq!(
            std::fs::read_to_string(l.build_dir().join("Cargo.lock")).unwrap(),
            "# evcxr's own\n"
        );
    }

    fn nb(outputs: Value, count: Value) -> Value {
        json!({"cells": [
            {"cell_type": "markdown", "source": ["# title"]},
            {"cell_type": "code", "source": ["s.run(\"plot rewards\")?"], "execution_count": count, "outputs": outputs},
        ], "nbformat": 4, "nbformat_minor": 5})
    }

    #[test]
    fn an_executed_notebook_passes_only_with_charts_and_no_errors() {
        let svg = json!([{"output_type": "execute_result", "data": {"text/html": ["<div><svg width=\"8\">", "</svg></div>"], "text/plain": ["x"]}}]);
        assert_eq!(inspect(&nb(svg.clone(), json!(1))).unwrap().verdict(), Ok(()));
        let png = json!([{"output_type": "display_data", "data": {"image/png": "iVBOR"}}]);
        assert_eq!(inspect(&nb(png, json!(1))).unwrap().png, 1);

        let text_only = json!([{"output_type": "stream", "name": "stdout", "text": ["done\n"]}]);
        assert!(inspect(&nb(text_only, json!(1)))
            .unwrap()
            .verdict()
            .unwrap_err()
            .contains("no SVG or PNG"));
        let error = json!([{"output_type": "error", "ename": "Error", "evalue": "cancelled", "traceback": []}]);
        let e = inspect(&nb(error, json!(1))).unwrap();
        assert!(e.verdict().unwrap_err().contains("cell 2: Error: cancelled"));
        let question_mark =
            json!([{"output_type": "stream", "name": "stderr", "text": ["\n", "invalid digit found in string\n"]}]);
        assert!(inspect(&nb(question_mark, json!(1)))
            .unwrap()
            .verdict()
            .unwrap_err()
            .contains("stderr: invalid digit found in string"));
        assert!(inspect(&nb(svg, Value::Null))
            .unwrap()
            .verdict()
            .unwrap_err()
            .contains("did not run"));
        assert!(inspect(&json!({"x": 1})).is_err());
    }
}
