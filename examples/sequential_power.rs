//! The price and the gain of a `compare` that may stop early: the anytime-valid sign-flip
//! e-process (`augwise::search::sequential`) against the fixed-k test augwise runs otherwise
//! (exact sign-flip for k ≤ 20, paired t beyond), on simulated paired differences (normal, in
//! units of their sd). No network: pure arithmetic, seeded, the same figures on every machine.
//!
//!     cargo run --release --example sequential_power -- [runs]
//!
//! Prints the error rate under the null when the sequential test is looked at after every pair
//! (at most α = 5% by Ville's inequality), then per effect and budget: the sequential test's
//! power and mean pairs used, and the fixed test's power at that budget. Runtime: ~2 s.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use augwise::search::sequential::simulate;
use augwise::search::stats::{paired_power, ALPHA};

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let (null, _) = simulate(|r| r.normal(), runs, 100, ALPHA, 1);
    println!(
        "under the null, monitored after each of 100 pairs: rejects {:.1}% ({runs} runs)",
        100.0 * null
    );
    println!(
        "\n{:>6} {:>6}  {:>16} {:>10}  {:>15}",
        "effect", "budget", "sequential power", "mean pairs", "fixed-k power"
    );
    for effect in [0.5, 1.0, 1.5, 2.0, 3.0] {
        for max in [8usize, 12, 20, 30] {
            let (power, pairs) = simulate(|r| effect + r.normal(), runs, max, ALPHA, 9);
            let fixed = paired_power(max, effect, ALPHA, runs, 9);
            println!("{effect:>6.1} {max:>6}  {power:>16.3} {pairs:>10.1}  {fixed:>15.3}");
        }
    }
    Ok(())
}
