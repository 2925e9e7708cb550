//! Makes every target of this crate (lib tests, examples, doctests, benches) find libtorch at
//! run time without LD_LIBRARY_PATH: cargo overrides `[env] LD_LIBRARY_PATH`, but an rpath
//! baked into the binary works. The directory arrives from torch-sys (`links = "tch"`).
include!("build-support/torch_env.rs");

fn main() {
    torch_env();
    autocast_shim();
}

/// Compile src/amp_autocast.cpp (the bf16 autocast dtype) and src/optim_foreach.cpp (the
/// multi-tensor SGD); tch has no binding for either. Against the same libtorch headers
/// torch-sys used.
fn autocast_shim() {
    println!("cargo:rerun-if-changed=src/amp_autocast.cpp");
    println!("cargo:rerun-if-changed=src/optim_foreach.cpp");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let root = std::path::Path::new(&lib).join("..");
    cc::Build::new()
        .cpp(true)
        .file("src/amp_autocast.cpp")
        .file("src/optim_foreach.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("augwise_amp");
}
