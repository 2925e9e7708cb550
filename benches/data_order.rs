//! What the data order adds to a reward's noise: the same probes with every trajectory on
//! stage 1's data order (`data_order=shared`, what augwise did before) and with trajectory i
//! on an order of its own, shared by every policy's trajectory i (`per_trajectory`, the
//! default). Prints, per policy, the mean reward with its interval and σ of one trajectory, and
//! the sd of a paired difference (common random numbers in both designs), from one stage-1
//! snapshot. The shared order leaves a source of noise out of every interval: σ with it is
//! what a user's interval should have been.
//!
//!     cargo bench --bench data_order -- [k] [preset] [policy …]
//!
//! Data: Fashion-MNIST as `make run` has it. Runtime on 2 CPU cores with the cpu preset and
//! k = 8: stage 1 ≈ 30 s, then ≈ 6.6 s per trajectory, 2 × k × policies trajectories
//! (≈ 3.5 min for the defaults). Defaults: k 8, preset cpu, policies `none` and `aws:uniform`.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use anyhow::Result;
use augwise::policy::Policy;
use augwise::search::{DataOrder, Pairing, SearchConfig, Session};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let k: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let preset = args.get(1).cloned().unwrap_or_else(|| "cpu".into());
    let mut specs: Vec<String> = args.iter().skip(2).cloned().collect();
    if specs.len() < 2 {
        specs = vec!["none".into(), "aws:uniform".into()];
    }
    let policies: Vec<Policy> = specs.iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    let dir = std::env::temp_dir().join(format!("augwise-data-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut s = Session::new(SearchConfig::preset(&preset)?, &dir)?;
    s.pretrain(None)?;
    println!(
        "preset {preset}: {} search-train / {} val images, k = {k}",
        s.splits.train.len(),
        s.splits.val.len()
    );
    println!(
        "{:<16} {:<24} {:>22} {:>10}",
        "data order", "policy", "mean reward (95% CI)", "σ (points)"
    );
    for order in [DataOrder::Shared, DataOrder::PerTrajectory] {
        // Stage 1 is the same either way: only stage 2's seeds read the key.
        s.config.data_order = order;
        let r = s.compare(&policies, Some(k), Pairing::CommonRandomNumbers)?;
        for (spec, e) in specs.iter().zip(&r.estimates) {
            println!(
                "{:<16} {:<24} {:>22} {:>10.2}",
                format!("{order:?}"),
                spec,
                e.percent_short(),
                100.0 * e.sd
            );
        }
        for c in &r.comparisons {
            println!(
                "{:<16} {:<24} difference {:+.2} points, sd of a difference {:.2}, p = {:.4} ({:.0}s)",
                format!("{order:?}"),
                format!("{} − {}", c.a, c.b),
                100.0 * c.difference,
                100.0 * c.sd,
                c.p_value.unwrap_or(f64::NAN),
                r.seconds
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
