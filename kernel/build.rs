//! rpath to libtorch and the torch build's version, for the kernel installer (see
//! build-support/torch_env.rs).
include!("../build-support/torch_env.rs");

fn main() {
    torch_env();
}
