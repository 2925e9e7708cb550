//! Measuring fixed policies with the search's own proxy, without touching θ: `probe` (one
//! policy's reward), `compare` (a paired test of several, or of two stopping early) and
//! `fulltrain` (the after-search retrain, the ground truth `correlate` ranks against).

use std::time::Instant;

use super::error::SearchError;
use super::ppo::Trajectory;
use super::progress::{BatchAt, Progress, Purpose};
use super::report::{CompareReport, EarlyStop, FulltrainReport, Pairing, ProbeReport};
use super::sequential::{confidence_sequence, SignFlipEProcess};
use super::stage1::shared_model;
use super::stats::ALPHA;
use super::stream;
use super::trajectory::{probe_seeds, Bench, Execute, TrajectorySeeds};
use crate::policy::Policy;
use crate::policy::PolicyAugment;
use crate::rng::mix;
use crate::train::{TrainConfig, Trainer};

/// Pairs an early-stopping `compare` runs at most unless told: an effect of one pair-to-pair
/// sd stops within them with 81% power after 13 pairs on average, one of 2 sd after 8
/// (`examples/sequential_power.rs`); a null comparison costs all 20 (9 min of the `cpu` preset on
/// 2 cores; docs/signal-study.md §7).
pub const EARLY_MAX_DEFAULT: usize = 20;

/// The proxy reward of any fixed policy from `k` trajectories.
pub(super) fn probe(exec: &mut dyn Execute, policy: &Policy, k: usize) -> Result<ProbeReport, SearchError> {
    let spec = policy.to_string();
    let seeds: Vec<TrajectorySeeds> = (0..k).map(|i| probe_seeds(exec.config(), i)).collect();
    let ran = exec.trajectories(policy, &seeds, Purpose::Probe, 0, (0, k))?;
    if ran.done.is_empty() {
        return Err(SearchError::ProbeDiverged {
            policy: spec,
            reasons: ran.diverged_lines(),
        });
    }
    Ok(ProbeReport::new(spec, ran.done))
}

/// Probe trajectory `index` of `policy` on a model of its own, returned with the
/// fine-tuned trainer: what the reward was measured on can be inspected (the same seeds,
/// so the same trajectory as `probe`'s `index`-th).
pub(super) fn trajectory_with_model(
    bench: &mut Bench,
    policy: &Policy,
    index: usize,
) -> Result<(Trajectory, Trainer), SearchError> {
    let runner = bench.runner(policy, Purpose::Trajectory, 1, 0)?;
    let config = bench.config;
    let model = shared_model(config, &bench.splits.train.info, bench.device, config.seed)?;
    let mut trainer = Trainer::new(model, bench.pipeline.normalize.clone(), config.stage1_train_config())?;
    bench.cancel.reset();
    let seeds = probe_seeds(config, index);
    let t = runner.run(
        &mut trainer,
        &bench.splits.train,
        &bench.splits.val,
        seeds,
        0,
        &mut |_| {},
    )?;
    let t = t?;
    Ok((t, trainer))
}

/// One probe trajectory of `policy` with `seeds` (`probe_seeds(i)` is `probe`'s i-th; a
/// study may vary one stream, e.g. the policy's own draws), on the session's shared model,
/// handing the fine-tuned model to `on_epoch` after each epoch: per-image outcomes, other
/// rewards, anything a study measures beside the reward. `index` only labels progress.
pub(super) fn probe_observed(
    bench: &mut Bench,
    policy: &Policy,
    seeds: TrajectorySeeds,
    index: usize,
    on_epoch: &mut dyn FnMut(usize, &Trainer) -> Result<(), SearchError>,
) -> Result<Trajectory, SearchError> {
    let runner = bench.runner(policy, Purpose::Probe, 1, 0)?;
    bench.cancel.reset();
    let (progress, trainer, splits) = (&mut *bench.progress, &mut bench.stage1.trainer, bench.splits);
    let outcome = runner.run_observed(
        trainer,
        &splits.train,
        &splits.val,
        seeds,
        index,
        &mut |p| progress.emit(p),
        on_epoch,
    );
    bench.stage1.back_to_snapshot(bench.config)?;
    Ok(outcome??)
}

/// Paired proxy comparison of two or more policies: `k` trajectories each (default: the
/// probe count) with common random numbers — trajectory i of every policy shares the data
/// order, crops, flips and Cutout holes, so the differences are the policies' own. Every
/// pair of policies is tested (exact sign-flip test, Holm-corrected across pairs).
/// `pairing: Independent` runs each policy's trajectories on their own random numbers,
/// as separate official-style runs would (the benchmark's baseline).
pub(super) fn compare(
    exec: &mut dyn Execute,
    policies: &[Policy],
    k: usize,
    pairing: Pairing,
) -> Result<CompareReport, SearchError> {
    if policies.len() < 2 {
        return Err(SearchError::TooFewPolicies {
            primitive: "compare",
            min: 2,
        });
    }
    let start = Instant::now();
    let mut rewards: Vec<Vec<Option<f64>>> = Vec::with_capacity(policies.len());
    let mut discarded = Vec::new();
    for (j, p) in policies.iter().enumerate() {
        let seeds: Vec<TrajectorySeeds> = (0..k)
            .map(|i| {
                let s = probe_seeds(exec.config(), i);
                match pairing {
                    Pairing::CommonRandomNumbers => s,
                    Pairing::Independent => {
                        let own = mix(s.policy, j as u64 + 1);
                        TrajectorySeeds {
                            order: own,
                            augment: own,
                            policy: own,
                        }
                    }
                }
            })
            .collect();
        let purpose = Purpose::Compare {
            policy: j + 1,
            of: policies.len(),
        };
        rewards.push(rewards_by_seed(
            exec,
            p,
            &seeds,
            purpose,
            (0, seeds.len()),
            &mut discarded,
        )?);
    }
    let names: Vec<String> = policies.iter().map(ToString::to_string).collect();
    Ok(CompareReport::new(
        names,
        rewards,
        pairing,
        discarded,
        start.elapsed().as_secs_f64(),
    ))
}

/// A paired comparison of two policies that stops as soon as the evidence suffices: pairs
/// of trajectories (common random numbers, as `compare`) one at a time — a grouped batch
/// at a time where trajectories train together — up to `max_k` pairs (default
/// [`EARLY_MAX_DEFAULT`]), judged after every pair by the anytime-valid sign-flip
/// e-process (`sequential`), whose error rate stays at most α however early it stops. The
/// report's p-value (1/E) and interval (a confidence sequence) are the anytime-valid ones;
/// trajectory i is `compare`'s trajectory i, so the rewards equal a fixed `compare`'s
/// first pairs.
pub(super) fn compare_early(
    exec: &mut dyn Execute,
    a: &Policy,
    b: &Policy,
    max_k: usize,
) -> Result<CompareReport, SearchError> {
    let start = Instant::now();
    let policies = [a.clone(), b.clone()];
    let chunk = exec.trajectory_batch().max(1);
    let (mut e, mut diffs) = (SignFlipEProcess::default(), Vec::new());
    let mut rewards: Vec<Vec<Option<f64>>> = vec![Vec::new(), Vec::new()];
    let mut discarded = Vec::new();
    let mut next = 0;
    'pairs: while next < max_k {
        let seeds: Vec<TrajectorySeeds> = (next..(next + chunk).min(max_k))
            .map(|i| probe_seeds(exec.config(), i))
            .collect();
        let mut chunk_rewards = Vec::with_capacity(2);
        for (j, p) in policies.iter().enumerate() {
            let purpose = Purpose::Compare { policy: j + 1, of: 2 };
            let frame = (next, max_k);
            chunk_rewards.push(rewards_by_seed(exec, p, &seeds, purpose, frame, &mut discarded)?);
        }
        for (ra, rb) in chunk_rewards[0].iter().zip(&chunk_rewards[1]) {
            rewards[0].push(*ra);
            rewards[1].push(*rb);
            next += 1;
            if let (Some(x), Some(y)) = (ra, rb) {
                e.push(x - y);
                diffs.push(x - y);
                if e.rejects(ALPHA) {
                    break 'pairs;
                }
            }
        }
    }
    let names: Vec<String> = policies.iter().map(ToString::to_string).collect();
    let mut report = CompareReport::new(
        names,
        rewards,
        Pairing::CommonRandomNumbers,
        discarded,
        start.elapsed().as_secs_f64(),
    );
    report.stopped_early(EarlyStop {
        max_k,
        pairs: e.n,
        stopped: e.rejects(ALPHA),
        e_value: e.wealth,
        direction: e.direction(),
        interval: confidence_sequence(&diffs, ALPHA),
    });
    Ok(report)
}

/// The rewards of `policy`'s trajectories, one per seed in the seeds' order (`None` where
/// one diverged, so pairs stay aligned); the diverged ones are added to `discarded`.
/// `frame`: these seeds' first index and the count they are part of, for progress.
fn rewards_by_seed(
    exec: &mut dyn Execute,
    policy: &Policy,
    seeds: &[TrajectorySeeds],
    purpose: Purpose,
    frame: (usize, usize),
    discarded: &mut Vec<String>,
) -> Result<Vec<Option<f64>>, SearchError> {
    let ran = exec.trajectories(policy, seeds, purpose, 0, frame)?;
    discarded.extend(ran.diverged.iter().map(|d| format!("{policy}: {d}")));
    Ok(seeds
        .iter()
        .map(|s| ran.done.iter().find(|t| t.seed == s.policy).map(|t| t.reward))
        .collect())
}

/// Train from scratch on search-train + validation with `policy`, and report test accuracy
/// after each epoch (the after-search retrain; the ground truth for `correlate`).
pub(super) fn fulltrain(bench: &mut Bench, policy: &Policy, epochs: usize) -> Result<FulltrainReport, SearchError> {
    let config = bench.config;
    let data = bench.splits.train.concat(&bench.splits.val)?;
    let seed = mix(config.seed, stream::FULLTRAIN);
    let model = shared_model(config, &data.info, bench.device, seed)?;
    let cfg = TrainConfig {
        seed,
        schedule: config.fulltrain_schedule.for_epochs(epochs),
        ..config.stage1_train_config()
    };
    let mut trainer = Trainer::new(model, bench.pipeline.normalize.clone(), cfg)?;
    let mut aug = PolicyAugment::new(bench.pipeline.clone(), policy.sampler()?);
    bench.cancel.reset();
    let (mut reports, mut test) = (Vec::new(), Vec::new());
    for e in 0..epochs {
        let (cancel, progress) = (bench.cancel, &mut *bench.progress);
        let r = trainer.train_epoch(&data, &mut aug, cancel, &mut |b| {
            progress.emit(Progress::Fulltrain {
                at: BatchAt {
                    epoch: e + 1,
                    epochs,
                    batch: b.batch,
                    batches: b.batches,
                    loss: b.loss,
                },
            })
        })?;
        test.push(trainer.evaluate(&bench.splits.test)?);
        reports.push(r);
    }
    let warning = crate::train::divergence_warning(&reports, data.info.classes.len());
    Ok(FulltrainReport {
        policy: policy.to_string(),
        epochs: reports,
        test_accuracy: test,
        warning,
    })
}
