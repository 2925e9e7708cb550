//! rpath to libtorch and the torch build's version, for the REPL and its launcher (see
//! build-support/torch_env.rs).
include!("../build-support/torch_env.rs");

fn main() {
    torch_env();
}
