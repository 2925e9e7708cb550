//! `augwise-kernel` as a user runs it, hermetically: a stand-in evcxr_jupyter on PATH, the
//! kernelspec under a temporary prefix and the build cache under a temporary XDG_CACHE_HOME.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::path::Path;
use std::process::{Command, Output};

fn kernel(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_augwise-kernel"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn install_writes_a_kernelspec_that_finds_libtorch_and_preloads_augwise() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("evcxr_jupyter");
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let prefix = dir.path().join("prefix");
    let cache = dir.path().join("cache");
    let o = kernel(
        &["install", "--prefix", prefix.to_str().unwrap()],
        &[("PATH", Path::new(&path)), ("XDG_CACHE_HOME", &cache)],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Rust (augwise)"), "{}", text(&o));

    let spec_dir = prefix.join("share/jupyter/kernels/augwise");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec_dir.join("kernel.json")).unwrap()).unwrap();
    assert_eq!(spec["display_name"], "Rust (augwise)");
    assert_eq!(spec["argv"][0], fake.to_str().unwrap());
    assert!(Path::new(spec["env"]["LIBTORCH"].as_str().unwrap())
        .join("lib/libtorch_cpu.so")
        .exists());
    let build = Path::new(spec["env"]["EVCXR_TMPDIR"].as_str().unwrap());
    assert!(build.starts_with(cache.join("augwise")), "{build:?}");
    assert!(
        build.join("Cargo.lock").exists(),
        "the build cache is seeded with augwise's lockfile"
    );
    let init = std::fs::read_to_string(spec_dir.join("config/init.evcxr")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap();
    assert!(
        init.contains(&format!(":dep augwise = {{ path = \"{}\" }}", repo.display())),
        "{init}"
    );
    assert!(std::fs::read_to_string(spec_dir.join("config/prelude.rs"))
        .unwrap()
        .contains("use augwise::prelude::*;"));

    // The per-user install (JUPYTER_DATA_DIR), then `uninstall --purge` removes it and its cache.
    let data = dir.path().join("jupyter");
    let env = [
        ("PATH", Path::new(&path)),
        ("XDG_CACHE_HOME", cache.as_path()),
        ("JUPYTER_DATA_DIR", data.as_path()),
    ];
    assert!(kernel(&["install"], &env).status.success());
    let user_spec = data.join("kernels/augwise/kernel.json");
    assert!(user_spec.exists());
    let o = kernel(&["uninstall", "--purge"], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!user_spec.exists() && !build.exists(), "{}", text(&o));
    // Someone else's kernelspec under our name is left alone.
    std::fs::create_dir_all(user_spec.parent().unwrap()).unwrap();
    std::fs::write(&user_spec, r#"{"display_name": "Rust"}"#).unwrap();
    let o = kernel(&["uninstall"], &env);
    assert!(
        !o.status.success() && text(&o).contains("left alone") && user_spec.exists(),
        "{}",
        text(&o)
    );
}

#[test]
fn mistakes_get_a_clear_error_and_an_exit_code() {
    let o = kernel(&["instal"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("'install'"),
        "clap's did-you-mean names `install`: {}",
        text(&o)
    );
    let o = kernel(&["execute"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no notebooks given"));
    let o = kernel(&["execute", "README.md"], &[]);
    assert!(text(&o).contains("not a notebook"));
    let o = kernel(&["doctor"], &[]);
    for piece in ["libtorch", "evcxr_jupyter", "jupyter", "kernelspec"] {
        assert!(text(&o).contains(piece), "doctor does not check {piece}: {}", text(&o));
    }
}
