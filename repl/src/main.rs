//! `augwise`: the command line and the REPL. Thin: parses arguments, calls the library,
//! prints its reports. With no subcommand it is the REPL on a terminal, and runs the commands
//! piped to it otherwise.

mod shell;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use augwise::augment::Pipeline;
use augwise::data::{download, DataSpec, SplitConfig, Splits};
use augwise::device::{self, DeviceSpec, Diagnostics};
use augwise::model::{Arch, Model};
use augwise::policy::Policy;
use augwise::policy::PolicyAugment;
use augwise::train::{CancelFlag, LrSchedule, TrainConfig, Trainer};
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
    /// Run directory of the session the REPL and scripts build.
    #[arg(long, global = true, default_value = "runs/repl")]
    run_dir: PathBuf,
    /// Configuration preset of that session: cpu, gpu, paper, or auto (gpu when CUDA is
    /// available, else cpu).
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
        /// Dataset spec: fashion-mnist, mnist:DIR, cifar10:DIR, cifar100:DIR, folder:DIR, synthetic[:k=v,..]
        #[arg(long, default_value = "fashion-mnist")]
        data: DataSpec,
        /// resnet20, resnet56, wrn-28-10, wrn-40-2, wrn-16-2
        #[arg(long, default_value = "resnet20")]
        model: Arch,
        #[arg(long, default_value_t = 3)]
        epochs: usize,
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
    Search {
        /// cpu (a few minutes on 2 cores), gpu (one GPU, Fashion-MNIST) or paper (official
        /// settings, CIFAR-10); default: gpu when CUDA is available, else cpu.
        #[arg(long)]
        preset: Option<String>,
        /// Run directory (checkpoints, history, best_policy.json).
        #[arg(long, default_value = "runs/search")]
        run_dir: PathBuf,
        /// Override the preset's number of updates.
        #[arg(long)]
        updates: Option<usize>,
        /// Continue the run in --run-dir instead of starting over.
        #[arg(long)]
        resume: bool,
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

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn shell(cli: &Cli) -> Result<augwise::command::Shell> {
    let preset = match cli.preset.as_str() {
        "auto"
            if augwise::device::resolve(cli.device)
                .map(|d| d.device.is_cuda())
                .unwrap_or(false) =>
        {
            "gpu"
        }
        "auto" => "cpu",
        other => other,
    };
    let config = augwise::search::SearchConfig::preset(preset)?
        .with_device(cli.device)
        .with_seed(cli.seed);
    Ok(augwise::command::Shell::new(config, cli.run_dir.clone()))
}

fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command.as_ref() else {
        let mut sh = shell(&cli)?;
        if std::io::stdin().is_terminal() {
            return shell::interactive(&mut sh);
        }
        let lines = shell::utf8_lines(std::io::stdin().lock());
        std::process::exit(shell::run_lines(&mut sh, lines, cli.json, cli.keep_going));
    };
    if let Command::Repl = command {
        return shell::interactive(&mut shell(&cli)?);
    }
    if let Command::Run { script } = command {
        let mut sh = shell(&cli)?;
        let code = if script.as_os_str() == "-" {
            shell::run_lines(
                &mut sh,
                shell::utf8_lines(std::io::stdin().lock()),
                cli.json,
                cli.keep_going,
            )
        } else {
            let file = std::fs::File::open(script).with_context(|| format!("reading script {}", script.display()))?;
            shell::run_lines(
                &mut sh,
                shell::utf8_lines(std::io::BufReader::new(file)),
                cli.json,
                cli.keep_going,
            )
        };
        std::process::exit(code);
    }
    let (cli_device, cli_seed) = (cli.device, cli.seed);
    let Some(command) = cli.command else {
        return Ok(());
    };
    match command {
        Command::Repl | Command::Run { .. } => Ok(()),
        Command::Device => {
            println!("{}", Diagnostics::collect());
            Ok(())
        }
        Command::Download { name, dir, url } => {
            let archive = download::archive(&name)?;
            let dir = dir.unwrap_or_else(|| augwise::data::data_root().join(&name));
            let out = download::download(&archive, url.as_deref(), &dir)?;
            println!("{name}: verified and ready in {}", out.display());
            Ok(())
        }
        Command::Search {
            preset,
            run_dir,
            updates,
            resume,
        } => search(cli_device, cli_seed, preset, run_dir, updates, resume),
        Command::Explain { stage, preset } => {
            let cfg = augwise::search::SearchConfig::preset(&preset)?;
            println!(
                "{}",
                augwise::search::explain(stage.as_deref(), &cfg).map_err(anyhow::Error::msg)?
            );
            Ok(())
        }
        Command::Export { policy, top } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&augwise::policy::torchvision_export(&policy, top))?
            );
            Ok(())
        }
        Command::Train {
            data,
            model,
            epochs,
            limit,
            test_limit,
            batch_size,
            lr,
            policy,
        } => {
            augwise::limits::EPOCHS
                .check_usize(epochs)
                .map_err(|e| anyhow::anyhow!("--epochs: {e}"))?;
            if !(2..=augwise::limits::BATCH.max as i64).contains(&batch_size) {
                anyhow::bail!(
                    "--batch-size: expected 2 to {} images per batch, not {batch_size}",
                    augwise::limits::BATCH.max
                );
            }
            let choice = device::resolve(cli_device)?;
            println!("device   {choice}");
            let source = data.load().with_context(|| format!("loading `{data}`"))?;
            let split = SplitConfig::default()
                .with_seed(cli_seed)
                .with_limit((limit > 0).then_some(limit))
                .with_test_limit((test_limit > 0).then_some(test_limit));
            let splits = Splits::new(&source, &split)?.to_device(choice.device)?;
            let info = &splits.train.info;
            println!(
                "data     {data}: {} search-train / {} val / {} test, {}×{}×{}, {} classes",
                splits.train.len(),
                splits.val.len(),
                splits.test.len(),
                info.channels,
                info.height,
                info.width,
                info.num_classes()
            );
            let (mean, std) = splits.train.channel_stats()?;
            let pipeline = Pipeline::for_dataset(info, mean, std);
            let normalize = pipeline.normalize.clone();
            let mut augment = PolicyAugment::new(pipeline, policy.sampler()?);
            println!(
                "policy   {policy} (then Cutout {}, after crop pad {} and flip {})",
                augment.pipeline.cutout,
                augment.pipeline.crop_padding,
                if augment.pipeline.hflip { "on" } else { "off" }
            );
            let net = Model::new(model, info.channels, info.num_classes(), choice.device, cli_seed)?;
            println!("model    {model}: {} parameters", net.param_count());
            let schedule = LrSchedule::WarmupCosine {
                start: lr / 4.0,
                peak: lr,
                floor: 0.001,
                warmup_epochs: 1.0_f64.min(epochs as f64),
                total_epochs: epochs as f64,
            };
            let cfg = TrainConfig::default()
                .with_batch_size(batch_size)
                .with_schedule(schedule)
                .with_seed(cli_seed);
            let mut trainer = Trainer::new(net, normalize, cfg)?;
            let cancel = CancelFlag::new();
            let tty = std::io::stderr().is_terminal();
            let on_batch = |p: &augwise::train::BatchProgress| {
                if tty || p.batch == p.batches || p.batch % 25 == 0 {
                    eprint!(
                        "\r  epoch {} batch {:>4}/{}  loss {:.4}  lr {:.4}  {:.0} img/s   {}",
                        p.epoch,
                        p.batch,
                        p.batches,
                        p.loss,
                        p.lr,
                        p.images_per_sec,
                        if tty { "" } else { "\n" }
                    );
                    let _ = std::io::stderr().flush();
                }
            };
            let mut on_event = |event: augwise::train::FitEvent| match event {
                augwise::train::FitEvent::Batch(p) => on_batch(p),
                augwise::train::FitEvent::Epoch(r) => {
                    if tty {
                        eprint!("\r\x1b[2K");
                    }
                    println!("{r}");
                }
            };
            trainer.fit(
                &splits.train,
                Some(&splits.val),
                epochs,
                &mut augment,
                &cancel,
                &mut on_event,
            )?;
            let test = trainer.evaluate(&splits.test)?;
            println!(
                "test     top-1 accuracy {:.2}% on {} images",
                100.0 * test,
                splits.test.len()
            );
            Ok(())
        }
    }
}

fn search(
    device: DeviceSpec,
    seed: u64,
    preset: Option<String>,
    run_dir: PathBuf,
    updates: Option<usize>,
    resume: bool,
) -> Result<()> {
    use augwise::search::{SearchConfig, Session};
    let started = std::time::Instant::now();
    let mut session = if resume {
        println!("resuming {}", run_dir.display());
        Session::resume(&run_dir)?
    } else {
        // The global `--preset` (default `auto`) reaches the subcommand's own flag too.
        let name = match preset.filter(|p| p != "auto") {
            Some(p) => p,
            None if augwise::device::resolve(device)
                .map(|d| d.device.is_cuda())
                .unwrap_or(false) =>
            {
                "gpu".into()
            }
            None => "cpu".into(),
        };
        let mut cfg = SearchConfig::preset(&name)?.with_device(device).with_seed(seed);
        if let Some(u) = updates {
            cfg = cfg.with_updates(u);
        }
        println!(
            "preset   {name}: {} on {}, {} pretrain epochs, {} updates × {} trajectories of {} epochs",
            cfg.model, cfg.data, cfg.pretrain_epochs, cfg.updates, cfg.trajectories, cfg.finetune_epochs
        );
        if run_dir.join("session.json").exists() {
            println!(
                "note     {} already holds a run; starting over (use --resume to continue it)",
                run_dir.display()
            );
        }
        Session::new(cfg, &run_dir)?
    };
    println!("device   {}", session.device);
    println!(
        "data     {} search-train / {} val / {} test images",
        session.splits.train.len(),
        session.splits.val.len(),
        session.splits.test.len()
    );
    let tty = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now();
    session.set_progress(move |p| {
        if tty {
            eprint!("\r\x1b[2K  {} {:5.1}%  {}", p.stage(), 100.0 * p.fraction(), p);
        } else if last.elapsed().as_secs_f64() > 5.0 {
            eprintln!("  {} {:5.1}%  {}", p.stage(), 100.0 * p.fraction(), p);
            last = std::time::Instant::now();
        }
    });
    let clear = || {
        if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[2K");
        }
    };
    if session.pretrain_epochs_done() < session.config.pretrain_epochs {
        println!("\n== stage 1: shared-weight pretraining (pairs drawn uniformly per image)");
        let r = session.pretrain(None)?;
        clear();
        println!("{r}");
    }
    let todo = session.config.updates.saturating_sub(session.ppo.updates);
    println!(
        "\n== search: {todo} updates of {} trajectories (stage-2 fine-tune from the snapshot, PPO on θ)",
        session.config.trajectories
    );
    for _ in 0..todo {
        let augwise::search::Step { evaluate: e, update: u } = session.step(1)?.steps.remove(0);
        clear();
        for d in &e.discarded {
            println!("  discarded: {d}");
        }
        println!("{u}");
    }
    let best = session.best_policy()?;
    let path = run_dir.join("best_policy.json");
    augwise::checkpoint::write_atomic(
        &path,
        serde_json::to_string_pretty(&augwise::policy::torchvision_export(&best, 25))?.as_bytes(),
    )?;
    let final_path = run_dir.join("final_policy.json");
    let final_policy = session.current_policy()?;
    augwise::checkpoint::write_atomic(
        &final_path,
        serde_json::to_string_pretty(&augwise::policy::torchvision_export(&final_policy, 25))?.as_bytes(),
    )?;
    println!("\n== result");
    let describe = |label: &str, theta: &augwise::policy::Theta| -> Result<()> {
        let dist = theta.distribution()?;
        println!(
            "{label}: entropy {:.4} nats (uniform {:.4}); top pairs:",
            dist.entropy(),
            (1296f64).ln()
        );
        for (k, p) in dist.top(5) {
            println!(
                "  {:<36} {:.3}%  ({:.2}× uniform)",
                augwise::augment::space::pair_name(k),
                100.0 * p,
                p * 1296.0
            );
        }
        let (m1, m2) = dist.marginals();
        let mut ops: Vec<(usize, f64)> = m1.iter().zip(&m2).map(|(a, b)| (a + b) / 2.0).enumerate().collect();
        ops.sort_by(|a, b| b.1.total_cmp(&a.1));
        let fmt = |v: &[(usize, f64)]| {
            v.iter()
                .map(|(i, p)| format!("{} {:.2}%", augwise::augment::space::aws_name(*i), 100.0 * p))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("  ops most likely:  {}", fmt(&ops[..4]));
        println!("  ops least likely: {}", fmt(&ops[ops.len() - 4..]));
        Ok(())
    };
    if let Some(b) = &session.best {
        describe(
            &format!(
                "best θ (highest mean reward, {:.2}%, sampled at update {})",
                100.0 * b.mean_reward,
                b.update
            ),
            &b.theta,
        )?;
    }
    describe(
        &format!("final θ (after {} updates)", session.ppo.updates),
        &session.ppo.theta,
    )?;
    println!(
        "policies exported to {} and {} (torchvision sub-policies; see examples/pytorch/augwise_policy.py)",
        path.display(),
        final_path.display()
    );
    println!(
        "checkpoints in {} — continue with `augwise search --resume --run-dir {}`; total {:.0}s",
        run_dir.display(),
        run_dir.display(),
        started.elapsed().as_secs_f64()
    );
    // The last word: did θ move further than the same search on information-free rewards?
    if session.ppo.updates > 0 {
        println!("\n== against the noise-only null");
        println!("{}", session.null(None)?);
    }
    Ok(())
}
