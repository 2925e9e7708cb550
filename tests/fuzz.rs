//! Fuzzing kept in CI (issue 11): seeded generators of hostile-but-ordinary input — REPL lines,
//! policy specs, data files, `session.json` — fed to augwise in process. Every input must give
//! a result or an error: no panic, no abort, no hang. The regression corpus
//! (tests/fuzz-corpus/lines.txt: every line that once crashed the REPL) runs first.
//!
//!     AUGWISE_FUZZ_LINES=20000 AUGWISE_FUZZ_SEED=7 cargo test --release --test fuzz -- --nocapture
//!
//! CI runs the defaults (a fixed seed, a few thousand lines, well under a minute on 2 cores).
//! A line that runs past 2 s is cancelled as Ctrl-C would (and must stop); past 60 s it is a
//! hang. Before each line runs it is written to target/tmp/fuzz-last-line.txt, which names the
//! culprit if the process dies.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use augwise::command::{Shell, COMMANDS};
use augwise::policy::Policy;
use augwise::rng::Rng;
use augwise::search::Session;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[(rng.next_f64() * items.len() as f64) as usize % items.len()]
}

/// A short random string: printable ASCII, quotes, separators, non-ASCII, control bytes.
fn garbage(rng: &mut Rng) -> String {
    // No '/': a bare path could name a directory outside the test's own (paths come from World).
    const ALPHABET: &[&str] = &[
        "a", "Z", "0", "9", ":", "=", ",", "+", "-", " ", "\"", "'", "\\", "θ", "é", "\u{0}", "\t", "e", "x", "1e9",
        "%", "*", "…",
    ];
    let n = 1 + (rng.next_f64() * 12.0) as usize;
    (0..n).map(|_| pick(rng, ALPHABET)).collect()
}

/// The fuzz's world: files and directories a line may name, all inside one temporary directory.
struct World {
    dir: PathBuf,
    /// Paths inside the test's directory (what writing commands get).
    paths: Vec<String>,
    /// Special files reading commands also get.
    special: Vec<String>,
}

impl World {
    fn new(dir: &Path) -> World {
        let d = |p: &str| dir.join(p).display().to_string();
        // Data sets: good, truncated, lying headers; a one-class image folder; a CIFAR directory.
        let fm = dir.join("fm");
        std::fs::create_dir_all(&fm).unwrap();
        let images = common::idx_bytes(&[40, 8, 8], &[7; 40 * 64]);
        let labels = common::idx_bytes(&[40], &(0..40).map(|i| (i % 10) as u8).collect::<Vec<_>>());
        for split in ["train", "t10k"] {
            std::fs::write(fm.join(format!("{split}-images-idx3-ubyte")), &images).unwrap();
            std::fs::write(fm.join(format!("{split}-labels-idx1-ubyte")), &labels).unwrap();
        }
        let lying = dir.join("lying");
        std::fs::create_dir_all(&lying).unwrap();
        std::fs::write(
            lying.join("train-images-idx3-ubyte"),
            common::idx_bytes(&[4, 1 << 31, 1 << 31], &[1; 64]),
        )
        .unwrap();
        std::fs::write(lying.join("train-labels-idx1-ubyte"), common::idx_bytes(&[4], &[1; 4])).unwrap();
        let one_class = dir.join("folder1/only");
        std::fs::create_dir_all(&one_class).unwrap();
        common::write_cifar10(&dir.join("cifar"), 3);
        std::fs::write(dir.join("bad.json"), b"{\"format\": 3").unwrap();
        std::fs::write(dir.join("theta.json"), b"{\"a\": [1, 2]}").unwrap();
        let paths = vec![
            d("out.json"),
            d("run2"),
            d("fm"),
            d("lying"),
            d("folder1"),
            d("cifar"),
            d("bad.json"),
            d("theta.json"),
            d("missing/deeper/x"),
            dir.display().to_string(),
        ];
        let special = ["/dev/zero", "/dev/urandom", "/nonexistent", "/proc/self/mem", "/"]
            .map(String::from)
            .to_vec();
        World {
            dir: dir.to_owned(),
            paths,
            special,
        }
    }

    /// A path to write to: inside the test's directory.
    fn path(&self, rng: &mut Rng) -> String {
        let refs: Vec<&str> = self.paths.iter().map(String::as_str).collect();
        pick(rng, &refs).to_owned()
    }

    /// A path to read from: also devices, /proc, the root.
    fn read_path(&self, rng: &mut Rng) -> String {
        if rng.next_f64() < 0.3 {
            let refs: Vec<&str> = self.special.iter().map(String::as_str).collect();
            return pick(rng, &refs).to_owned();
        }
        self.path(rng)
    }

    fn number(&self, rng: &mut Rng) -> String {
        pick(
            rng,
            &[
                "0",
                "1",
                "2",
                "3",
                "-1",
                "0.5",
                "1e10",
                "1e30",
                "NaN",
                "inf",
                "18446744073709551615",
                "99999999999999999999",
                "4294967296",
                "3x",
                "",
                "100000000",
            ],
        )
        .to_owned()
    }

    fn policy(&self, rng: &mut Rng) -> String {
        match (rng.next_f64() * 6.0) as u32 {
            0 => pick(
                rng,
                &[
                    "none",
                    "aws:uniform",
                    "autoaugment:cifar10",
                    "randaugment:n=2,m=9",
                    "trivialaugment",
                    "pair:Rotate:30+Invert",
                    "best",
                    "current",
                ],
            )
            .to_owned(),
            1 => format!("theta:{}", self.read_path(rng)),
            2 => format!("randaugment:n={},m={}", self.number(rng), self.number(rng)),
            3 => format!("pair:{}+{}", garbage(rng), garbage(rng)),
            4 => format!("subpolicies:{}", garbage(rng)),
            _ => garbage(rng),
        }
    }

    fn data(&self, rng: &mut Rng) -> String {
        match (rng.next_f64() * 5.0) as u32 {
            0 => format!(
                "synthetic:n={},size={},classes={}",
                self.number(rng),
                self.number(rng),
                self.number(rng)
            ),
            1 => format!("fashion-mnist:{}", self.read_path(rng)),
            2 => format!("cifar10:{}", self.read_path(rng)),
            3 => format!("folder:{}", self.read_path(rng)),
            _ => "synthetic:n=24,size=8,classes=3".into(),
        }
    }

    fn key_value(&self, rng: &mut Rng) -> String {
        const KEYS: &[&str] = &[
            "trajectories",
            "finetune_epochs",
            "pretrain_epochs",
            "batch_size",
            "updates",
            "cutout",
            "seed",
            "reward_top",
            "probe_trajectories",
            "fulltrain_epochs",
            "null_replicates",
            "pairs_per_trajectory",
            "trajectory_batch",
            "precision",
            "channels_last",
            "device",
            "model",
            "data",
            "finetune_lr",
            "pretrain_lr",
            "ppo.clip",
            "split.limit",
            "nonsense",
        ];
        let key = pick(rng, KEYS);
        let value = match key {
            "data" => self.data(rng),
            "model" => pick(
                rng,
                &["resnet20", "wrn-16-100000", "wrn-1000-2", "resnet-7", "wrn-16-2"],
            )
            .to_owned(),
            "device" => pick(rng, &["cpu", "cuda", "cuda:7", "auto", "tpu"]).to_owned(),
            "precision" => pick(rng, &["fp32", "bf16", "fp8"]).to_owned(),
            _ if rng.next_f64() < 0.8 => self.number(rng),
            _ => garbage(rng),
        };
        format!("{key}={value}")
    }

    fn line(&self, rng: &mut Rng) -> String {
        if rng.next_f64() < 0.05 {
            return garbage(rng);
        }
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).filter(|n| *n != "quit").collect();
        let name = pick(rng, &names);
        let n = (rng.next_f64() * 4.0) as usize;
        let args: Vec<String> = (0..n)
            .map(|_| match name {
                "probe" | "compare" | "fulltrain" | "correlate" if rng.next_f64() < 0.7 => self.policy(rng),
                "config" => self.key_value(rng),
                "data" => self.data(rng),
                "model" => pick(rng, &["resnet20", "wrn-16-100000", "wrn-28-10", "resnet1000000", "x"]).to_owned(),
                "resume" if rng.next_f64() < 0.6 => self.read_path(rng),
                "save" | "plot" | "export" if rng.next_f64() < 0.6 => self.path(rng),
                "export" => pick(rng, &["json", "theta", "csv", "yaml"]).to_owned(),
                "plot" => pick(
                    rng,
                    &[
                        "rewards",
                        "accuracy",
                        "theta",
                        "marginals",
                        "images",
                        "ops",
                        "probes",
                        "correlate",
                        "pie",
                    ],
                )
                .to_owned(),
                _ if rng.next_f64() < 0.7 => self.number(rng),
                _ => garbage(rng),
            })
            .collect();
        let quote = |a: &String| {
            if a.contains(' ') || a.is_empty() {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        };
        std::iter::once(name.to_owned())
            .chain(args.iter().map(quote))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs lines in one shell, as one `--keep-going` REPL process would; returns the slowest.
fn run_lines(shell: &mut Shell, lines: impl Iterator<Item = String>, last_line: &Path) -> (usize, Duration) {
    // The watchdog: past 2 s a line is cancelled (Ctrl-C), and keeps being cancelled.
    let started = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let clock = Instant::now();
    let flag = shell.cancel_flag();
    let watchdog = {
        let (started, done) = (started.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let t = started.load(Ordering::SeqCst);
                if t != 0 && clock.elapsed().as_millis() as u64 > t + 2000 {
                    flag.cancel();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let (mut count, mut slowest) = (0, Duration::ZERO);
    for line in lines {
        std::fs::write(last_line, &line).unwrap();
        started.store(clock.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
        let t = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shell.run(&line).map(|o| o.text.len())));
        started.store(0, Ordering::SeqCst);
        let took = t.elapsed();
        assert!(result.is_ok(), "line {count} panicked: {line:?}");
        assert!(
            took < Duration::from_secs(60),
            "line {count} hung for {took:?}: {line:?}"
        );
        if let Ok(Err(e)) = &result {
            let text = e.to_string();
            assert!(
                !text.is_empty() && !text.contains("panicked") && !text.contains("Backtrace"),
                "line {line:?}: unhelpful error {text:?}"
            );
        }
        slowest = slowest.max(took);
        count += 1;
    }
    done.store(true, Ordering::SeqCst);
    let _ = watchdog.join();
    (count, slowest)
}

#[test]
fn fuzzed_input_never_crashes_or_hangs() {
    let tmp = tempfile::tempdir().unwrap();
    let world = World::new(tmp.path());
    // Lines name relative paths too (`save 3x`, `plot rewards`): they land in the test's
    // directory. The other tests of this binary use absolute paths only.
    std::env::set_current_dir(tmp.path()).unwrap();
    let seed = env_or("AUGWISE_FUZZ_SEED", 1);
    let n = env_or("AUGWISE_FUZZ_LINES", 2500) as usize;
    let last_line = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-last-line.txt");
    let config = common::tiny_config().with_data("synthetic:n=24,size=8,classes=3".parse().unwrap());
    let mut shell = Shell::new(config, world.dir.join("run"));

    // 1. The regression corpus: every line that once crashed the REPL.
    let corpus = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-corpus/lines.txt")).unwrap();
    let corpus_lines: Vec<String> = corpus
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("$TMP", &world.dir.display().to_string()))
        .collect();
    let (ran, slowest) = run_lines(&mut shell, corpus_lines.clone().into_iter(), &last_line);
    assert_eq!(ran, corpus_lines.len());
    eprintln!("corpus: {ran} lines, slowest {slowest:?}");

    // 2. Generated lines, with a pretrained session part of the time so later primitives run.
    let mut rng = Rng::new(seed);
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        if i % 400 == 0 {
            lines.push("reset".into());
            lines.push("config data=synthetic:n=24,size=8,classes=3 model=resnet20 pretrain_epochs=1 finetune_epochs=1 trajectories=2 batch_size=16".into());
            lines.push("reset".into());
            lines.push("pretrain".into());
        }
        lines.push(world.line(&mut rng));
    }
    let t = Instant::now();
    let (ran, slowest) = run_lines(&mut shell, lines.into_iter(), &last_line);
    eprintln!(
        "seed {seed}: {ran} lines in {:.1} s, slowest {slowest:?}",
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzzed_policy_specs_parse_or_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let world = World::new(tmp.path());
    let mut rng = Rng::new(env_or("AUGWISE_FUZZ_SEED", 1) ^ 0x5eed);
    let mut parsed = 0;
    for _ in 0..env_or("AUGWISE_FUZZ_SPECS", 3000) {
        let spec = world.policy(&mut rng);
        let Ok(p) = spec.parse::<Policy>() else { continue };
        parsed += 1;
        // What parses prints back to a spec that parses to the same policy, and samples.
        let again: Policy = p
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("{spec:?} → {p} does not parse back: {e}"));
        assert_eq!(again.to_string(), p.to_string(), "{spec:?}");
        if let Ok(s) = p.sampler() {
            let _ = s.draw(4, 8, 8, &mut rng);
        }
    }
    assert!(parsed > 100, "the generator should produce valid specs too ({parsed})");
}

/// Damaged copies of a real checkpoint: truncated, bytes flipped, numbers replaced by huge,
/// negative, fractional or wrong-typed values. `resume` gives a session or an error.
#[test]
fn fuzzed_session_files_resume_or_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let good_dir = tmp.path().join("good");
    {
        let mut s = Session::new(common::tiny_config(), &good_dir).unwrap();
        s.pretrain(None).unwrap();
        s.step(1).unwrap();
    }
    let good = std::fs::read(good_dir.join("session.json")).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let mut rng = Rng::new(env_or("AUGWISE_FUZZ_SEED", 1) ^ 0x50);
    let (mut resumed, mut refused) = (0, 0);
    for i in 0..env_or("AUGWISE_FUZZ_SESSIONS", 60) {
        let bytes = match i % 3 {
            0 => good[..(rng.next_f64() * good.len() as f64) as usize].to_vec(),
            1 => {
                let mut b = good.clone();
                for _ in 0..1 + (rng.next_f64() * 4.0) as usize {
                    let at = (rng.next_f64() * b.len() as f64) as usize % b.len();
                    b[at] = (rng.next_f64() * 256.0) as u8;
                }
                b
            }
            _ => {
                let mut v = value.clone();
                mutate(&mut v, &mut rng);
                serde_json::to_vec(&v).unwrap()
            }
        };
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&good_dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("snapshot-") {
                std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
        }
        std::fs::write(dir.join("session.json"), &bytes).unwrap();
        match std::panic::catch_unwind(|| Session::resume(&dir).map(|mut s| s.step(1).map(drop))) {
            Ok(Ok(_)) => resumed += 1,
            Ok(Err(e)) => {
                refused += 1;
                assert!(
                    e.to_string().contains("session.json") || e.to_string().contains("snapshot"),
                    "case {i}: {e}"
                );
            }
            Err(_) => panic!(
                "case {i} panicked; its session.json is {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
    eprintln!("session.json fuzz: {resumed} resumed, {refused} refused");
    assert!(refused > 0);
}

/// Replace one number, string or array somewhere in `v` by a hostile value.
fn mutate(v: &mut serde_json::Value, rng: &mut Rng) {
    mutate_at(v, rng, 0);
}

fn mutate_at(v: &mut serde_json::Value, rng: &mut Rng, depth: usize) {
    use serde_json::{json, Value};
    if depth < 8 && rng.next_f64() < 0.8 {
        match v {
            Value::Object(m) if !m.is_empty() => {
                let k = m
                    .keys()
                    .nth((rng.next_f64() * m.len() as f64) as usize % m.len())
                    .cloned()
                    .unwrap_or_default();
                if k != "format" {
                    if let Some(child) = m.get_mut(&k) {
                        mutate_at(child, rng, depth + 1);
                        return;
                    }
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let i = (rng.next_f64() * a.len() as f64) as usize % a.len();
                mutate_at(&mut a[i], rng, depth + 1);
                return;
            }
            _ => {}
        }
    }
    *v = match (rng.next_f64() * 7.0) as u32 {
        0 => json!(1e308),
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(0.5),
        4 => json!("x"),
        5 => Value::Null,
        _ => json!([]),
    };
}

/// Damaged data files — IDX raw and gzipped, CIFAR batches, PNGs: bytes flipped (headers
/// included), truncated, extended. Every load gives a data set or an error naming a file.
#[test]
fn fuzzed_data_files_load_or_fail_cleanly() {
    use augwise::data::{load_cifar10, load_idx_pair, load_image_folder};
    let tmp = tempfile::tempdir().unwrap();
    let seed = env_or("AUGWISE_FUZZ_SEED", 1) ^ 0xda7a;
    let damage = |good: &[u8], rng: &mut Rng| -> Vec<u8> {
        let mut b = good.to_vec();
        match (rng.next_f64() * 4.0) as u32 {
            0 => b.truncate((rng.next_f64() * b.len() as f64) as usize),
            1 => b.extend((0..(rng.next_f64() * 64.0) as usize).map(|i| i as u8)),
            _ => {
                // Mostly near the start, where the headers are.
                for _ in 0..1 + (rng.next_f64() * 3.0) as usize {
                    let reach = if rng.next_f64() < 0.7 { b.len().min(40) } else { b.len() };
                    let at = (rng.next_f64() * reach as f64) as usize % b.len().max(1);
                    if let Some(x) = b.get_mut(at) {
                        *x = if rng.next_f64() < 0.5 {
                            0xff
                        } else {
                            (rng.next_f64() * 256.0) as u8
                        };
                    }
                }
            }
        }
        b
    };
    let images = common::idx_bytes(&[6, 5, 5], &[9; 150]);
    let labels = common::idx_bytes(&[6], &[0, 1, 2, 0, 1, 2]);
    let cifar_dir = tmp.path().join("cifar");
    common::write_cifar10(&cifar_dir, 2);
    let batch = std::fs::read(cifar_dir.join("data_batch_1.bin")).unwrap();
    let png_dir = tmp.path().join("png");
    for class in ["a", "b"] {
        std::fs::create_dir_all(png_dir.join(class)).unwrap();
        image::RgbImage::from_pixel(6, 5, image::Rgb([1, 2, 3]))
            .save(png_dir.join(class).join("0.png"))
            .unwrap();
    }
    let png = std::fs::read(png_dir.join("a/0.png")).unwrap();
    let names = ["a", "b", "c"];
    let (mut loaded, mut refused) = (0, 0);
    for i in 0..env_or("AUGWISE_FUZZ_FILES", 300) {
        let case = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(&case).unwrap();
        let result = std::panic::catch_unwind(|| match i % 5 {
            0 | 1 => {
                let (img, lab) = (case.join("img"), case.join("lab"));
                let gz = i % 5 == 1;
                let pack = |b: Vec<u8>| if gz { common::gzip(&b) } else { b };
                if rng_bool(seed ^ i) {
                    std::fs::write(&img, damage(&pack(images.clone()), &mut Rng::new(seed ^ i))).unwrap();
                    std::fs::write(&lab, pack(labels.clone())).unwrap();
                } else {
                    std::fs::write(&img, pack(damage(&images, &mut Rng::new(seed ^ i)))).unwrap();
                    std::fs::write(&lab, pack(damage(&labels, &mut Rng::new(seed ^ (i + 1))))).unwrap();
                }
                load_idx_pair(&img, &lab, "fuzz", &names, true)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            2 => {
                common::write_cifar10(&case, 2);
                std::fs::write(
                    case.join(format!("data_batch_{}.bin", 1 + i % 5)),
                    damage(&batch, &mut Rng::new(seed ^ i)),
                )
                .unwrap();
                load_cifar10(&case).map(drop).map_err(|e| e.to_string())
            }
            _ => {
                for class in ["a", "b"] {
                    std::fs::create_dir_all(case.join(class)).unwrap();
                    std::fs::write(case.join(class).join("0.png"), &png).unwrap();
                }
                std::fs::write(case.join("b/0.png"), damage(&png, &mut Rng::new(seed ^ i))).unwrap();
                load_image_folder(&case, true).map(drop).map_err(|e| e.to_string())
            }
        });
        match result {
            Ok(Ok(())) => loaded += 1,
            Ok(Err(e)) => {
                refused += 1;
                assert!(
                    e.contains(&case.display().to_string()),
                    "case {i}: the error names no file: {e}"
                );
            }
            Err(_) => panic!("case {i} panicked (files in {})", case.display()),
        }
    }
    eprintln!("data fuzz: {loaded} loaded, {refused} refused");
    assert!(loaded > 0 && refused > 0);
}

fn rng_bool(i: u64) -> bool {
    Rng::new(i ^ 0xb001).next_f64() < 0.5
}
