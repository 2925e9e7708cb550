// Shared by the build scripts (`include!`d): bakes in where libtorch was at build time and
// which torch wheel it came from, and makes the rpath a RUNPATH so `LD_LIBRARY_PATH` (the
// launcher's choice, a GPU host's own torch) wins over the baked-in directory.

/// Emit the rpath and the `AUGWISE_TORCH_LIB` / `AUGWISE_TORCH_VERSION` compile-time vars.
fn torch_env() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:rustc-env=AUGWISE_TORCH_LIB=");
        println!("cargo:rustc-env=AUGWISE_TORCH_VERSION=unknown");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags,-rpath,{lib}");
    println!("cargo:rustc-env=AUGWISE_TORCH_LIB={lib}");
    // The wheel's version.py names the exact build (e.g. 2.11.0+cu130).
    let version_py = std::path::Path::new(&lib).join("..").join("version.py");
    let version = std::fs::read_to_string(version_py)
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("__version__"))
                .and_then(|l| l.split('\'').nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=AUGWISE_TORCH_VERSION={version}");
}
