//! An exported policy loads in a PyTorch training script (examples/pytorch/augwise_policy.py)
//! with the project's pinned torchvision, and augments images there.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::process::Command;

use augwise::policy::{torchvision_export, Policy, Theta};

#[test]
fn exported_policies_run_in_torchvision() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    if !std::path::Path::new(python).exists() && std::env::var_os("CI").is_none() {
        eprintln!("note: skipped: {python} missing; run scripts/setup.sh");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pytorch/augwise_policy.py");
    let dir = tempfile::tempdir().unwrap();
    let mut t = Theta::uniform();
    t.a[16] = 3.0;
    let searched = Policy::AwsTheta {
        probs: t.distribution().unwrap(),
        source: None,
    };
    for policy in [
        searched,
        "autoaugment:cifar10".parse().unwrap(),
        "subpolicies:(Rotate,0.7,2)(Invert,0.5);(Equalize,1)".parse().unwrap(),
    ] {
        let path = dir.path().join("policy.json");
        std::fs::write(&path, torchvision_export(&policy, 25).to_string()).unwrap();
        let out = Command::new(python).arg(script).arg(&path).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{policy}: {stderr}");
        assert!(stdout.starts_with("ok: "), "{policy}: {stdout}");
    }
}
