//! `augwise`: the command line and the REPL. Thin: every subcommand that computes (`train`,
//! `search`, `explain`, `device`) runs lines of the library's command table and prints its
//! results; none builds a model or a schedule itself. With no subcommand it is the REPL on a terminal, and runs the commands
//! piped to it otherwise.

mod terminal;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use augwise::command::{OnExistingRun, Shell};
use augwise::data::{download, DataSpec, SplitConfig};
use augwise::device::DeviceSpec;
use augwise::model::Arch;
use augwise::policy::Policy;
use augwise::search::{FulltrainSchedule, SearchConfig};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "augwise",
    version,
    about = "AWS auto-augment search on libtorch, step by step"
)]
struct Cli {
    /// auto, cpu, cuda or cuda:N
    #[arg(long, global = true, default_value = "auto")]
    device: DeviceSpec,
    /// Seed for splits, initialisation, data order and augmentation.
    #[arg(long, global = true, default_value_t = 0)]
    seed: u64,
    /// Run directory of the session (default: runs/repl, runs/search or runs/train, or the
    /// first free `-2`, `-3`… beside it). A directory you name that holds a run is refused, not
    /// overwritten: `resume` continues it.
    #[arg(long, global = true)]
    run_dir: Option<PathBuf>,
    /// Dataset spec: fashion-mnist, mnist:DIR, cifar10:DIR, cifar100:DIR, folder:DIR,
    /// synthetic[:k=v,..] (default: the preset's).
    #[arg(long, global = true)]
    data: Option<DataSpec>,
    /// resnet20, resnet56, wrn-28-10, wrn-40-2, wrn-16-2 (default: the preset's).
    #[arg(long, global = true)]
    model: Option<Arch>,
    /// Configuration preset: cpu, gpu, paper, notebook, cpu-search, or auto (gpu when CUDA is available,
    /// else cpu).
    #[arg(long, global = true, default_value = "auto")]
    preset: String,
    /// Scripts and piped input: one JSON object per command result.
    #[arg(long, global = true)]
    json: bool,
    /// Scripts and piped input: go on after a failed command (exit code still 1).
    #[arg(long, global = true)]
    keep_going: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The interactive REPL (the default on a terminal).
    Repl,
    /// Run a file of REPL commands in order (`-` reads stdin).
    Run { script: PathBuf },
    /// torch version, CUDA devices, threads, and which device `auto` picks.
    Device,
    /// Train a model on a dataset and report accuracy per epoch and on the test set.
    Train {
        /// Epochs from scratch (1 to 100,000), checked before anything loads.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=augwise::limits::EPOCHS.max))]
        epochs: u64,
        /// Cap on search-train + validation images (stratified); 0 = all.
        #[arg(long, default_value_t = 12_000)]
        limit: i64,
        /// Cap on test images (stratified); 0 = all.
        #[arg(long, default_value_t = 0)]
        test_limit: i64,
        #[arg(long, default_value_t = 128)]
        batch_size: i64,
        /// Peak learning rate of the warm-up + cosine schedule.
        #[arg(long, default_value_t = 0.2)]
        lr: f64,
        /// Augmentation policy spec (none, autoaugment:cifar10, randaugment, trivialaugment,
        /// aws, pair:OP1+OP2, theta:PATH, subpolicies:…), applied between flip and Cutout.
        #[arg(long, default_value = "none")]
        policy: Policy,
    },
    /// A whole AWS search: pretrain, updates (evaluate + PPO), best θ, exported policy.
    /// Its run directory (`--run-dir`, default runs/search) keeps checkpoints, history and
    /// best_policy.json; the preset is `--preset`'s.
    Search {
        /// Override the preset's number of updates.
        #[arg(long)]
        updates: Option<usize>,
        /// Continue the run in --run-dir (default runs/search) instead of starting a new one.
        #[arg(long)]
        resume: bool,
    },
    /// Is one policy better than another on this data? A paired `compare` (common random
    /// numbers, exact sign-flip test) on the shared weights of stage 1 — pretrained the first
    /// time for this data, model and preset, then reused from runs/stage1/<key>.
    Compare {
        /// Two or more policy specs (`augwise help policies`… or `help policies` in the REPL).
        #[arg(num_args = 2.., required = true)]
        policies: Vec<Policy>,
        /// Exactly this many trajectories per policy; with --early, the most pairs to run.
        /// Without it, two policies stop early (at most 20 pairs), more take the preset's probe
        /// count each.
        #[arg(long)]
        k: Option<usize>,
        /// Two policies, pair by pair, stopping as soon as the evidence suffices (an
        /// anytime-valid test: its error rate holds however early it stops).
        #[arg(long)]
        early: bool,
    },
    /// One policy's proxy reward with its 95% interval, on cached stage-1 weights (see compare).
    Probe {
        policy: Policy,
        /// Trajectories (default: the preset's probe count).
        #[arg(long)]
        k: Option<usize>,
    },
    /// The formulas and settings of a stage of AWS (overview, space, pretrain, sample,
    /// evaluate, update, fulltrain), with a preset's values.
    Explain {
        stage: Option<String>,
        #[arg(long, default_value = "cpu")]
        preset: String,
    },
    /// Export a policy as JSON for PyTorch training scripts (torchvision sub-policy form).
    Export {
        policy: Policy,
        /// Most likely AWS pairs to list as sub-policies.
        #[arg(long, default_value_t = 25)]
        top: usize,
    },
    /// One trajectory of a request the slurm executor wrote (a Slurm array task runs this):
    /// reads DIR/inputs.json, writes DIR/results/INDEX.json. INDEX defaults to the task's
    /// SLURM_ARRAY_TASK_ID.
    Worker { dir: PathBuf, index: Option<usize> },
    /// Download a published dataset (fashion-mnist, cifar10, cifar100), MD5-verified.
    Download {
        name: String,
        /// Target directory (default: data/<name>).
        dir: Option<PathBuf>,
        /// Base URL of a mirror instead of the authors' address.
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `--json` asks for JSON on every line, argument errors included (help and version
        // are not errors).
        Err(e) if e.use_stderr() && std::env::args().any(|a| a == "--json") => {
            println!(
                "{}",
                serde_json::json!({"ok": false, "error": e.to_string().trim_end()})
            );
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let json = cli.json;
    // Returning (not `process::exit`) drops the session first: its run-directory lock and
    // buffered output are released in order.
    match run(cli) {
        Ok(code) => code,
        // The failing line's error is already on screen.
        Err(e) if e.is::<Shown>() => ExitCode::FAILURE,
        Err(e) if json => {
            println!("{}", serde_json::json!({"ok": false, "error": format!("{e:#}")}));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A command of the table failed and its error was printed where it happened: the process
/// only has to end with a failure, not print a line the user never typed.
#[derive(Debug)]
struct Shown;

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped: the error above says why")
    }
}

impl std::error::Error for Shown {}

/// A script's exit status: 0, or 1 when a command failed.
fn status(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The configuration the global flags describe: `--preset` (`auto`: gpu with CUDA, else cpu),
/// then `--data`, `--model`, `--device`, `--seed`.
fn config(cli: &Cli) -> Result<(String, SearchConfig)> {
    let name = match cli.preset.as_str() {
        "auto" => auto_preset(cli.device),
        other => other,
    };
    let mut config = SearchConfig::preset(name)?.with_device(cli.device).with_seed(cli.seed);
    if let Some(d) = &cli.data {
        config = config.with_data(d.clone());
    }
    if let Some(m) = cli.model {
        config = config.with_model(m);
    }
    Ok((name.to_owned(), config))
}

/// A shell on `--run-dir`, or on `default` giving way to a free sibling when it holds a run.
fn shell_in(cli: &Cli, config: SearchConfig, default: &str) -> Shell {
    match &cli.run_dir {
        Some(dir) => Shell::new(config, dir.clone()),
        None => Shell::new(config, default).with_on_existing(OnExistingRun::NextFree),
    }
}

fn shell(cli: &Cli) -> Result<Shell> {
    Ok(shell_in(cli, config(cli)?.1, "runs/repl"))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let Some(command) = cli.command.as_ref() else {
        let mut sh = shell(&cli)?;
        if std::io::stdin().is_terminal() {
            terminal::interactive(&mut sh)?;
            return Ok(ExitCode::SUCCESS);
        }
        let lines = terminal::utf8_lines(std::io::stdin().lock());
        return Ok(status(terminal::run_lines(&mut sh, lines, cli.json, cli.keep_going)));
    };
    if let Command::Repl = command {
        terminal::interactive(&mut shell(&cli)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Run { script } = command {
        let mut sh = shell(&cli)?;
        let code = if script.as_os_str() == "-" {
            terminal::run_lines(
                &mut sh,
                terminal::utf8_lines(std::io::stdin().lock()),
                cli.json,
                cli.keep_going,
            )
        } else {
            let file = std::fs::File::open(script).with_context(|| format!("reading script {}", script.display()))?;
            terminal::run_lines(
                &mut sh,
                terminal::utf8_lines(std::io::BufReader::new(file)),
                cli.json,
                cli.keep_going,
            )
        };
        return Ok(status(code));
    }
    let Some(command) = cli.command.as_ref() else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Command::Worker { dir, index } = command {
        // Exit status 1 when the trajectory could not run, so Slurm records the task as FAILED;
        // the reason is in the result file and the task's log.
        // The task's log: a line per epoch (the last batch of each).
        let mut log = |p: &augwise::search::Progress| {
            if let augwise::search::Progress::Trajectories { at, .. } = p {
                if at.batch == at.batches {
                    eprintln!("worker: {p}");
                }
            }
        };
        return Ok(match augwise::search::run_worker(dir, *index, &mut log)? {
            Ok(()) => {
                if cli.json {
                    println!("{}", serde_json::json!({"ok": true, "command": "worker"}));
                }
                ExitCode::SUCCESS
            }
            Err(why) => {
                if cli.json {
                    println!("{}", serde_json::json!({"ok": false, "error": why}));
                } else {
                    eprintln!("{why}");
                }
                ExitCode::FAILURE
            }
        });
    }
    let done = match command {
        Command::Repl | Command::Run { .. } | Command::Worker { .. } => Ok(()),
        Command::Device => table(&mut shell(&cli)?, &["device"], cli.json),
        Command::Download { name, dir, url } => {
            let archive = download::archive(name)?;
            let dir = dir.clone().unwrap_or_else(|| augwise::data::data_root().join(name));
            let out = download::download(&archive, url.as_deref(), &dir)?;
            let text = format!("{name}: verified and ready in {}", out.display());
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "command": "download", "text": text, "data": {"dir": out}})
                );
            } else {
                println!("{text}");
            }
            Ok(())
        }
        Command::Search { updates, resume } => search(&cli, *updates, *resume),
        Command::Compare { policies, k, early } => {
            let specs: Vec<String> = policies.iter().map(|p| format!("\"{p}\"")).collect();
            let k = k.map(|k| format!(" {k}")).unwrap_or_default();
            let early = if *early { " early" } else { "" };
            on_stage1(&cli, &format!("compare {}{early}{k}", specs.join(" ")))
        }
        Command::Probe { policy, k } => {
            let k = k.map(|k| format!(" {k}")).unwrap_or_default();
            on_stage1(&cli, &format!("probe \"{policy}\"{k}"))
        }
        Command::Explain { stage, preset } => {
            let mut sh = Shell::new(SearchConfig::preset(preset)?, "runs/repl");
            let line = format!("explain {}", stage.as_deref().unwrap_or("overview"));
            table(&mut sh, &[&line], cli.json)
        }
        Command::Export { policy, top } => {
            let doc = augwise::policy::torchvision_export(policy, *top);
            // One JSON object per line with `--json`; readable otherwise.
            let text = if cli.json {
                serde_json::to_string(&doc)?
            } else {
                serde_json::to_string_pretty(&doc)?
            };
            println!("{text}");
            Ok(())
        }
        Command::Train {
            epochs,
            limit,
            test_limit,
            batch_size,
            lr,
            policy,
        } => {
            // A from-scratch training run is the table's `fulltrain` on a session of these
            // settings: search-train + validation, the warm-up-cosine recipe at peak `lr`.
            let split = SplitConfig::default()
                .with_seed(cli.seed)
                .with_limit((*limit > 0).then_some(*limit))
                .with_test_limit((*test_limit > 0).then_some(*test_limit));
            let mut config = SearchConfig::cpu()
                .with_data(cli.data.clone().unwrap_or_default())
                .with_model(cli.model.unwrap_or(Arch::RESNET20))
                .with_split(split)
                .with_batch_size(*batch_size)
                .with_device(cli.device)
                .with_seed(cli.seed);
            config.fulltrain_schedule = FulltrainSchedule::like_stage1(*lr);
            config.validate()?;
            let mut sh = shell_in(&cli, config, "runs/train");
            table(
                &mut sh,
                &["device", &format!("fulltrain \"{policy}\" {epochs}")],
                cli.json,
            )
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// Run `lines` through the command table, printing each result as the REPL would; the first
/// error ends it.
fn table(sh: &mut Shell, lines: &[&str], json: bool) -> Result<()> {
    let bar = terminal::attach_progress(sh, json);
    for line in lines {
        let result = sh.run(line);
        bar.clear();
        terminal::show(line, result, json).map_err(|()| Shown)?;
    }
    Ok(())
}

/// A whole search through the command table: stage 1 if it is not done, `step 1` until the
/// configured updates, the best θ exported, the search report.
fn search(cli: &Cli, updates: Option<usize>, resume: bool) -> Result<()> {
    let mut sh = if resume {
        let dir = cli.run_dir.clone().unwrap_or_else(|| PathBuf::from("runs/search"));
        let mut sh = Shell::new(SearchConfig::default(), &dir);
        let text = sh.resume(&dir)?;
        say(cli.json, "resume", &text);
        sh
    } else {
        let (name, mut cfg) = config(cli)?;
        if let Some(u) = updates {
            cfg = cfg.with_updates(u);
        }
        let text = format!(
            "preset   {name}: {} on {}, {} pretrain epochs, {} updates × {} trajectories of {} epochs",
            cfg.model, cfg.data, cfg.pretrain_epochs, cfg.updates, cfg.trajectories, cfg.finetune_epochs
        );
        say(cli.json, "search", &text);
        if let Some(dir) = cli.run_dir.as_ref().filter(|d| d.join("session.json").exists()) {
            anyhow::bail!(
                "{} already holds a run; nothing in it was changed. `augwise search --run-dir {} --resume` continues it; choose another --run-dir for a new search",
                dir.display(),
                dir.display()
            );
        }
        shell_in(cli, cfg, "runs/search")
    };
    let (done, total, updates_done, updates) = {
        let s = sh.session()?;
        (
            s.pretrain_epochs_done(),
            s.config.pretrain_epochs,
            s.ppo.updates,
            s.config.updates,
        )
    };
    let mut lines = vec!["device".to_owned()];
    if done < total {
        lines.push("pretrain".into());
    }
    lines.extend((updates_done..updates).map(|_| "step 1".to_owned()));
    let best = sh.session()?.run_dir.join("best_policy.json");
    lines.push(format!("export json \"{}\"", best.display()));
    lines.push("policy 5".into());
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    table(&mut sh, &lines, cli.json)
}

/// Run `line` (a `compare` or `probe`) on complete stage-1 weights for the global flags'
/// configuration: those of the cached run for it when there is one (finishing its stage 1 if
/// it was interrupted), else pretrained now into that cache. `--run-dir` names the directory
/// instead of the cache.
fn on_stage1(cli: &Cli, line: &str) -> Result<()> {
    let (name, config) = config(cli)?;
    config.validate()?;
    let dir = match &cli.run_dir {
        Some(d) => d.clone(),
        None => {
            let json = serde_json::to_vec(&config)?;
            let key = augwise::checkpoint::sha256_hex(&json);
            PathBuf::from("runs/stage1").join(format!("{name}-{}", &key[..12]))
        }
    };
    let mut sh = Shell::new(config, &dir);
    let mut lines = vec!["device".to_owned()];
    if dir.join("session.json").exists() {
        let text = sh.resume(&dir)?;
        say(cli.json, "resume", &text);
        let s = sh.session()?;
        if s.ppo.updates > 0 || !s.pending.is_empty() {
            anyhow::bail!(
                "{} holds a search, not a stage-1 cache; give `--run-dir` a directory of its own (or none, for the cache)",
                dir.display()
            );
        }
        if s.pretrain_epochs_done() < s.config.pretrain_epochs {
            lines.push("pretrain".into());
        } else {
            let text = format!(
                "stage 1: reusing the shared weights in {} (delete it to pretrain again)",
                dir.display()
            );
            say(cli.json, "stage1", &text);
        }
    } else {
        let text = format!(
            "stage 1: pretraining {} on {} into {} (the first time for this configuration; later runs reuse it)",
            sh.config.model,
            sh.config.data,
            dir.display()
        );
        say(cli.json, "stage1", &text);
        lines.push("pretrain".into());
    }
    lines.push(line.to_owned());
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    table(&mut sh, &lines, cli.json)
}

/// A line of the subcommand's own (not a command of the table): a JSON object with `--json`.
fn say(json: bool, command: &str, text: &str) {
    if json {
        println!("{}", serde_json::json!({"ok": true, "command": command, "text": text}));
    } else {
        println!("{text}");
    }
}

/// `gpu` where CUDA is available, else `cpu`.
fn auto_preset(device: DeviceSpec) -> &'static str {
    match augwise::device::resolve(device) {
        Ok(d) if d.device.is_cuda() => "gpu",
        _ => "cpu",
    }
}
