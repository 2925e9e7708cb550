//! `augwise`: the command line. Thin: parses arguments, calls the library, prints its reports.
//! (The interactive REPL on the library's command table arrives with issue 5.)

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use augwise::augment::{Pipeline, PolicyAugment};
use augwise::policy::Policy;
use augwise::data::{download, DataSpec, SplitConfig, Splits};
use augwise::device::{self, DeviceSpec, Diagnostics};
use augwise::model::{Arch, Model};
use augwise::train::{CancelFlag, LrSchedule, TrainConfig, Trainer};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "augwise", version, about = "AWS auto-augment search on libtorch, step by step")]
struct Cli {
    /// auto, cpu, cuda or cuda:N
    #[arg(long, global = true, default_value = "auto")]
    device: DeviceSpec,
    /// Seed for splits, initialisation, data order and augmentation.
    #[arg(long, global = true, default_value_t = 0)]
    seed: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn run(cli: Cli) -> Result<()> {
    match cli.command {
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
        Command::Export { policy, top } => {
            println!("{}", serde_json::to_string_pretty(&augwise::policy::torchvision_export(&policy, top))?);
            Ok(())
        }
        Command::Train { data, model, epochs, limit, test_limit, batch_size, lr, policy } => {
            let choice = device::resolve(cli.device)?;
            println!("device   {choice}");
            let source = data.load().with_context(|| format!("loading `{data}`"))?;
            let split = SplitConfig::default()
                .with_seed(cli.seed)
                .with_limit((limit > 0).then_some(limit))
                .with_test_limit((test_limit > 0).then_some(test_limit));
            let splits = Splits::new(&source, &split)?.to_device(choice.device);
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
            let (mean, std) = splits.train.channel_stats();
            let pipeline = Pipeline::for_dataset(info, mean, std);
            let normalize = pipeline.normalize.clone();
            let mut augment = PolicyAugment::new(pipeline, policy.sampler()?);
            println!("policy   {policy} (then Cutout {}, after crop pad {} and flip {})", augment.pipeline.cutout, augment.pipeline.crop_padding, if augment.pipeline.hflip { "on" } else { "off" });
            let net = Model::new(model, info.channels, info.num_classes(), choice.device, cli.seed)?;
            println!("model    {model}: {} parameters", net.param_count());
            let schedule = LrSchedule::WarmupCosine {
                start: lr / 4.0,
                peak: lr,
                floor: 0.001,
                warmup_epochs: 1.0_f64.min(epochs as f64),
                total_epochs: epochs as f64,
            };
            let cfg = TrainConfig::default().with_batch_size(batch_size).with_schedule(schedule).with_seed(cli.seed);
            let mut trainer = Trainer::new(net, normalize, cfg);
            let cancel = CancelFlag::new();
            let tty = std::io::stderr().is_terminal();
            let mut on_batch = |p: &augwise::train::BatchProgress| {
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
            let mut on_epoch = |r: &augwise::train::EpochReport| {
                if tty {
                    eprint!("\r\x1b[2K");
                }
                println!("{r}");
            };
            trainer.fit(&splits.train, Some(&splits.val), epochs, &mut augment, &cancel, &mut on_batch, &mut on_epoch)?;
            let test = trainer.evaluate(&splits.test)?;
            println!("test     top-1 accuracy {:.2}% on {} images", 100.0 * test, splits.test.len());
            Ok(())
        }
    }
}
