//! Makes every target of this crate (lib tests, examples, doctests, benches) find libtorch at
//! run time without LD_LIBRARY_PATH: cargo overrides `[env] LD_LIBRARY_PATH`, but an rpath
//! baked into the binary works. The directory arrives from torch-sys (`links = "tch"`).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-env=AUGWISE_TORCH_LIB={lib}");
        // The wheel's version.py names the exact build (e.g. 2.13.0+cu130).
        let version_py = std::path::Path::new(&lib).join("..").join("version.py");
        let version = std::fs::read_to_string(&version_py)
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("__version__"))
                    .and_then(|l| l.split('\'').nth(1).map(str::to_owned))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        println!("cargo:rustc-env=AUGWISE_TORCH_VERSION={version}");
    } else {
        println!("cargo:rustc-env=AUGWISE_TORCH_LIB=");
        println!("cargo:rustc-env=AUGWISE_TORCH_VERSION=unknown");
    }
}
