//! The AWS session end to end on tiny synthetic data: resume equals an uninterrupted run,
//! cancelling leaves the session as it was, bad checkpoints give clear errors, diverging
//! trajectories are discarded, and a short search learns to avoid label-breaking ops.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use augwise::data::{DataSpec, SplitConfig};
use augwise::search::{SearchConfig, SearchError, Session};
use serde_json::Value;

fn tiny() -> SearchConfig {
    common::tiny_config()
}

/// History as JSON without wall-clock fields.
fn timeless(s: &Session) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| k != "seconds" && k != "images_per_sec");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(&s.history).unwrap();
    strip(&mut v);
    serde_json::json!({ "history": v, "theta": s.ppo.theta, "best": s.best })
}

#[test]
fn resumed_search_equals_uninterrupted_and_pretrain_pieces_equal_one_go() {
    let a_dir = tempfile::tempdir().unwrap();
    let mut a = Session::new(tiny(), a_dir.path()).unwrap();
    a.pretrain(None).unwrap();
    a.step(2).unwrap();

    let b_dir = tempfile::tempdir().unwrap();
    {
        let mut b = Session::new(tiny(), b_dir.path()).unwrap();
        b.pretrain(Some(1)).unwrap();
    }
    {
        let mut b = Session::resume(b_dir.path()).unwrap();
        b.pretrain(Some(1)).unwrap();
        b.step(1).unwrap();
    }
    let mut b = Session::resume(b_dir.path()).unwrap();
    b.step(1).unwrap();
    assert_eq!(timeless(&a), timeless(&b));
    assert_eq!(a.ppo.updates, 2);
    // θ moves exactly when some advantage is not zero (all rewards equal, and the baseline
    // with them, gives none). Which case a machine's floats give varies — a tiny model can
    // predict one class everywhere — the rule holds on every machine.
    let advantages: Vec<f64> = a
        .history
        .updates
        .iter()
        .flat_map(|u| u.ppo.advantages.iter().copied())
        .collect();
    assert_eq!(advantages.len(), 4);
    assert_eq!(
        a.ppo.theta == augwise::policy::Theta::uniform(),
        advantages.iter().all(|&x| x == 0.0),
        "θ moved iff some advantage is not zero: {advantages:?}"
    );
}

#[test]
fn cancel_leaves_the_session_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(tiny(), dir.path()).unwrap();
    s.pretrain(None).unwrap();
    s.evaluate(Some(1)).unwrap();
    let before = timeless(&s);
    let pending = s.pending.clone();
    common::cancel_at_event(&mut s, 3);
    assert!(matches!(s.evaluate(Some(2)), Err(SearchError::Cancelled)));
    assert_eq!(s.pending, pending);
    assert_eq!(timeless(&s), before);
    // The next primitive runs normally and gives what it would have given uncancelled.
    s.set_progress(|_| {});
    let e = s.evaluate(Some(2)).unwrap();
    let fresh_dir = tempfile::tempdir().unwrap();
    let mut t = Session::new(tiny(), fresh_dir.path()).unwrap();
    t.pretrain(None).unwrap();
    t.evaluate(Some(1)).unwrap();
    let e2 = t.evaluate(Some(2)).unwrap();
    let rewards = |r: &augwise::search::EvaluateReport| r.trajectories.iter().map(|t| t.reward).collect::<Vec<_>>();
    assert_eq!(rewards(&e), rewards(&e2));
    // Cancelling stage 1 rolls the weights and the epoch count back.
    let dir2 = tempfile::tempdir().unwrap();
    let mut p = Session::new(tiny(), dir2.path()).unwrap();
    p.pretrain(Some(1)).unwrap();
    let flag = p.cancel_flag();
    p.set_progress(move |e| {
        if e.fraction() > 0.3 {
            flag.cancel();
        }
    });
    assert!(matches!(p.pretrain(Some(1)), Err(SearchError::Cancelled)));
    assert_eq!(p.pretrain_epochs_done(), 1);
}

#[test]
fn bad_checkpoints_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Session::new(tiny(), dir.path()).unwrap();
        s.pretrain(None).unwrap();
    }
    let state = dir.path().join("session.json");
    let good = std::fs::read_to_string(&state).unwrap();
    let v: Value = serde_json::from_str(&good).unwrap();
    let file = v["snapshot"]["file"].as_str().unwrap().to_owned();
    assert!(
        file.starts_with("snapshot-") && file.ends_with(".safetensors"),
        "{file}"
    );
    let weights = dir.path().join(&file);
    let bytes = std::fs::read(&weights).unwrap();
    // Truncated, or one byte flipped in the middle of the tensors: the checksum refuses both.
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let e = Session::resume(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains(&file) && e.contains("corrupt or truncated") && e.contains("changed after augwise wrote it"),
        "{e}"
    );
    let mut flipped = bytes.clone();
    flipped[bytes.len() * 3 / 4] ^= 0x10;
    std::fs::write(&weights, &flipped).unwrap();
    let e = Session::resume(dir.path()).unwrap_err().to_string();
    assert!(e.contains("changed after augwise wrote it"), "{e}");
    std::fs::remove_file(&weights).unwrap();
    let e = Session::resume(dir.path()).unwrap_err().to_string();
    assert!(e.contains("session.json") && e.contains("missing"), "{e}");
    std::fs::write(&weights, &bytes).unwrap();
    assert!(Session::resume(dir.path()).is_ok(), "the intact snapshot resumes");
    // Stage 1 recorded as not run beside a snapshot: refused, not silently retrained.
    let mut zero = v.clone();
    zero["pretrain_epochs_done"] = serde_json::json!(0);
    std::fs::write(&state, serde_json::to_string(&zero).unwrap()).unwrap();
    let e = Session::resume(dir.path()).unwrap_err().to_string();
    assert!(e.contains("stage 1 has not run"), "{e}");
    // Epochs recorded but no snapshot named: refused.
    let mut none = v.clone();
    none.as_object_mut().unwrap().remove("snapshot");
    std::fs::write(&state, serde_json::to_string(&none).unwrap()).unwrap();
    let e = Session::resume(dir.path()).unwrap_err().to_string();
    assert!(e.contains("names no weights snapshot"), "{e}");

    std::fs::write(&state, "{\"format\": \"augwise-session/1\", \"config\": ").unwrap();
    let e = Session::resume(dir.path()).unwrap_err().to_string();
    assert!(e.contains("session.json") && e.contains("corrupt"), "{e}");

    std::fs::write(&state, "{\"name\": \"some other tool\"}").unwrap();
    let e = Session::resume(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not an augwise checkpoint"), "{e}");

    let empty = tempfile::tempdir().unwrap();
    let e = Session::resume(empty.path()).unwrap_err().to_string();
    assert!(
        e.contains("not an augwise checkpoint") && e.contains("no session.json"),
        "{e}"
    );
}

/// A `session.json` that parses but is inconsistent is refused on resume, naming what is
/// wrong — not resumed to panic later in the update (issue 11) — and a reward no accuracy can
/// have is refused before it reaches Adam (it overflowed to inf, written as `null`).
#[test]
fn inconsistent_session_state_is_refused_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Session::new(tiny(), dir.path()).unwrap();
        s.pretrain(None).unwrap();
        s.step(1).unwrap();
    }
    let state = dir.path().join("session.json");
    let good: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let tamper = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        std::fs::write(&state, serde_json::to_string(&v).unwrap()).unwrap();
        Session::resume(dir.path()).unwrap_err().to_string()
    };
    let e = tamper(&|v| v["ppo"]["adam_m"]["a"] = serde_json::json!([0.0, 1.0]));
    assert!(e.contains("session.json") && e.contains("Adam's first moment"), "{e}");
    let e = tamper(&|v| v["ppo"]["adam_v"]["a"][0] = serde_json::json!(-1.0));
    assert!(e.contains("negative"), "{e}");
    let e = tamper(&|v| v["ppo"]["updates"] = serde_json::json!(5));
    assert!(e.contains("5 updates but the history records 1"), "{e}");
    let e = tamper(&|v| v["ppo"]["updates"] = serde_json::json!(u64::MAX));
    assert!(e.contains("past the limit"), "{e}");
    // Extreme values that used to leave a session stuck: θ NaN at every step, an update that
    // never returns.
    let e = tamper(&|v| v["ppo"]["adam_steps"] = serde_json::json!(u64::MAX));
    assert!(e.contains("Adam has taken"), "{e}");
    let e = tamper(&|v| v["config"]["ppo"]["kl_stop"] = serde_json::json!(1e300));
    assert!(e.contains("ppo.kl_stop must be in (0, 10]"), "{e}");
    let mut cfg = tiny();
    let e = cfg.set("ppo.max_inner_steps", "1000000000000").unwrap_err().to_string();
    assert!(e.contains("ppo.max_inner_steps must be between 1 and 100"), "{e}");
    assert_eq!(cfg, tiny(), "a refused value changes nothing");

    std::fs::write(&state, serde_json::to_string(&good).unwrap()).unwrap();
    {
        // A pending reward no accuracy can have, in the file: refused on resume, not an
        // update that fails forever.
        let mut s = Session::resume(dir.path()).unwrap();
        s.evaluate(Some(2)).unwrap();
    }
    let pending: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let mut bad = pending.clone();
    bad["pending"][0]["reward"] = serde_json::json!(1e308);
    std::fs::write(&state, serde_json::to_string(&bad).unwrap()).unwrap();
    let e = Session::resume(dir.path()).unwrap_err().to_string();
    assert!(e.contains("outside 0..=1"), "{e}");
    std::fs::write(&state, serde_json::to_string(&pending).unwrap()).unwrap();
    let mut s = Session::resume(dir.path()).unwrap();
    s.pending[0].reward = 1e308;
    let before = s.ppo.clone();
    let e = s.update().unwrap_err().to_string();
    assert!(e.contains("rewards are accuracies"), "{e}");
    assert_eq!(s.ppo, before, "a refused update changes nothing");
}

#[test]
fn primitives_refuse_to_run_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(tiny(), dir.path()).unwrap();
    assert!(matches!(s.evaluate(None), Err(SearchError::NotPretrained)));
    assert!(matches!(s.update(), Err(SearchError::NothingToUpdate)));
    assert!(matches!(
        s.probe(&"autoaugment".parse().unwrap(), None),
        Err(SearchError::NotPretrained)
    ));
    s.pretrain(None).unwrap();
    let e = s.pretrain(None).unwrap_err().to_string();
    assert!(e.contains("stage 1 is complete"), "{e}");
}

#[test]
fn diverging_trajectories_are_discarded_not_learned_from() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(tiny().with_finetune(1, Some(1e30)), dir.path()).unwrap();
    s.pretrain(None).unwrap();
    let e = s.evaluate(Some(2)).unwrap();
    assert_eq!(e.trajectories.len(), 0);
    assert_eq!(e.discarded.len(), 2, "{e}");
    // Counted within the trajectory's own fine-tune, not from stage 1's first epoch.
    assert!(
        e.discarded[0].contains("loss") && e.discarded[0].contains("fine-tune epoch 1,"),
        "{}",
        e.discarded[0]
    );
    assert!(s.pending.is_empty());
    assert!(matches!(s.update(), Err(SearchError::NothingToUpdate)));
    // `step` says what happened, not "run `evaluate` first".
    let e = s.step(1).unwrap_err().to_string();
    assert!(
        e.contains("every trajectory of update 1 diverged") && e.contains("finetune_lr"),
        "{e}"
    );
    assert_eq!(s.ppo.updates, 0);
}

/// A fine-tune rate far too high (1e4) leaves every trajectory at chance without a NaN: the
/// rewards are kept (they are finite) but `evaluate` says they carry nothing about θ.
#[test]
fn trajectories_at_chance_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(polarity().with_finetune(1, Some(1e4)), dir.path()).unwrap();
    s.pretrain(None).unwrap();
    let e = s.evaluate(Some(2)).unwrap();
    assert_eq!(e.trajectories.len(), 2, "{e}");
    let w = e.warning.as_deref().unwrap_or_default();
    assert!(w.contains("stayed at chance") && w.contains("finetune_lr"), "{e}");
    assert!(e.to_string().contains(w), "{e}");
}

#[test]
fn probe_fulltrain_and_correlate_report_on_the_right_splits() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(tiny(), dir.path()).unwrap();
    s.pretrain(None).unwrap();
    let theta = s.ppo.theta.clone();
    let p = s.probe(&"pair:Rotate:20+Invert".parse().unwrap(), Some(1)).unwrap();
    assert!((0.0..=1.0).contains(&p.reward));
    assert_eq!(s.ppo.theta, theta, "probe leaves θ alone");
    assert!(s.pending.is_empty());
    let c = s
        .correlate(
            &[
                "none".parse().unwrap(),
                "autoaugment".parse().unwrap(),
                "pair:Invert+Equalize".parse().unwrap(),
            ],
            Some(1),
        )
        .unwrap();
    assert_eq!(c.rows.len(), 3);
    assert!((-1.0..=1.0).contains(&c.kendall_tau) || c.kendall_tau.is_nan());
    assert!(c.to_string().contains("Kendall τ"));
    // Three policies agree by chance 1 time in 6: no interval, and no conclusion claimed.
    assert!(!c.can_conclude());
    assert_eq!((c.kendall_tau_ci95, c.spearman_rho_ci95), (None, None));
    assert!(c.kendall_tau_p.is_none_or(|p| p >= 1.0 / 3.0), "{c}");
    assert!(c.summary().contains("no conclusion about the proxy is possible"), "{c}");
}

/// Brightness-polarity data, two classes (dark vs bright background): Invert flips the label,
/// so a policy that always inverts is label-breaking there. Two classes, not four, so that the
/// tiny network learns it under every float setting (validation ≥ 97% where four classes gave
/// 50–58% and, on one AMD host, nothing at all).
fn polarity() -> SearchConfig {
    SearchConfig::cpu()
        .with_data(
            "synthetic:kind=polarity,classes=2,n=60,size=16,noise=0.1"
                .parse::<DataSpec>()
                .unwrap(),
        )
        .with_split(SplitConfig::default().with_val_fraction(0.33))
        .with_pretrain_epochs(4)
        .with_batch_size(32)
        .with_finetune(1, Some(0.03))
        .with_cutout(Some(0))
}

/// `compare` pairs trajectories with common random numbers: a policy that is the identity
/// in disguise (Invert then Solarize at 0 inverts twice) gives bit-identical trajectories —
/// difference exactly 0, p = 1 — while a label-breaking one (Invert then Equalize) loses in
/// every pair (exact sign-flip p = 2/2^k, significant at k = 6). Exact properties of one
/// machine's arithmetic, not a seed's luck: the label-breaking effect is tens of points.
#[test]
fn compare_is_exact_under_common_random_numbers_and_sees_label_breaking() {
    use augwise::search::Pairing;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(polarity(), dir.path()).unwrap();
    s.pretrain(None).unwrap();
    let same = s
        .compare(
            &["none".parse().unwrap(), "pair:Invert+Solarize:0".parse().unwrap()],
            Some(3),
            Pairing::CommonRandomNumbers,
        )
        .unwrap();
    assert_eq!(
        same.rewards[0], same.rewards[1],
        "identical images, identical trajectories"
    );
    assert_eq!((same.difference, same.p_value), (Some(0.0), Some(1.0)));
    assert!(
        same.comparisons[0]
            .verdict
            .starts_with("no difference detectable with k = 3"),
        "{same}"
    );
    let json = serde_json::to_value(&same).unwrap();
    assert!(
        json.get("difference").is_some() && json.get("ci95").is_some() && json.get("p_value").is_some(),
        "{json}"
    );

    let harm = s
        .compare(
            &["none".parse().unwrap(), "pair:Invert+Equalize".parse().unwrap()],
            Some(6),
            Pairing::CommonRandomNumbers,
        )
        .unwrap();
    let c = &harm.comparisons[0];
    assert!(c.difference > 0.05, "{harm}");
    assert_eq!(c.p_value, Some(2.0 / 64.0), "{harm}");
    assert_eq!(c.verdict, "none better");
    let (lo, hi) = c.ci95.unwrap();
    assert!(lo > 0.0 && lo <= c.difference && c.difference <= hi);
    // Stopping early: pair by pair, the same trajectories (the fixed compare's first pairs,
    // bit for bit), judged by the anytime-valid test, which stops once the evidence suffices
    // — never before 7 pairs — and says so with its own p-value (1/E) and interval.
    let early = s
        .compare_early(
            &"none".parse().unwrap(),
            &"pair:Invert+Equalize".parse().unwrap(),
            Some(12),
        )
        .unwrap();
    let stop = early.early.clone().unwrap();
    assert!(stop.stopped && (7..=12).contains(&stop.pairs), "{early}");
    assert_eq!(early.k, stop.pairs, "no pair past the stop is reported");
    for j in 0..2 {
        assert_eq!(
            early.rewards[j][..6],
            harm.rewards[j][..],
            "trajectory i is compare's trajectory i"
        );
    }
    let c = &early.comparisons[0];
    assert_eq!(c.verdict, "none better");
    assert!(
        c.p_value.unwrap() <= 0.05 && c.method.starts_with("anytime-valid"),
        "{early}"
    );
    let (lo, hi) = c.ci95.unwrap();
    assert!(lo > 0.0 && lo <= c.difference && c.difference <= hi, "{early}");
    assert!(early.to_string().contains("stopped early after"), "{early}");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let sink = seen.clone();
    s.set_progress(move |p| {
        if let augwise::search::Progress::Trajectories { first, total, .. } = p {
            sink.lock().unwrap().insert((*first, *total));
        }
    });
    let none_found = s
        .compare_early(
            &"none".parse().unwrap(),
            &"pair:Invert+Solarize:0".parse().unwrap(),
            Some(3),
        )
        .unwrap();
    // Progress counts pairs of the early compare's maximum, not each one-pair request.
    assert_eq!(
        seen.lock().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![(0, 3), (1, 3), (2, 3)]
    );
    let stop = none_found.early.clone().unwrap();
    assert!(!stop.stopped && stop.pairs == 3 && stop.e_value == 1.0, "{none_found}");
    assert_eq!(none_found.rewards, same.rewards);
    assert_eq!(
        none_found.comparisons[0].verdict,
        "no difference detectable within 3 pairs"
    );
    // Probes use the same random numbers: probing `none` again replays its compare rewards.
    let p = s.probe(&"none".parse().unwrap(), Some(3)).unwrap();
    assert_eq!(
        p.trajectories.iter().map(|t| Some(t.reward)).collect::<Vec<_>>(),
        same.rewards[0]
    );
    assert!(p.estimate.ci95.is_some() && p.to_string().contains("95% CI"));
    // Several policies: all pairs, Holm-corrected.
    let three = s
        .compare(
            &[
                "none".parse().unwrap(),
                "pair:Invert+Solarize:0".parse().unwrap(),
                "pair:Invert+Equalize".parse().unwrap(),
            ],
            Some(2),
            Pairing::CommonRandomNumbers,
        )
        .unwrap();
    assert_eq!(three.comparisons.len(), 3);
    assert_eq!(three.difference, None, "no single comparison to put at the top");
    assert!(three
        .comparisons
        .iter()
        .all(|c| c.p_adjusted.unwrap() >= c.p_value.unwrap()));
}

/// Rewards are accuracies of the fine-tuned model on the *un-augmented* validation split:
/// the inspected trajectory equals `probe`'s, its last accuracy equals a hand-computed top-1
/// on the raw validation images, and not the accuracy on validation images put through the
/// policy (which, for a label-breaking policy, is far lower or higher).
#[test]
fn rewards_come_from_the_unaugmented_validation_split() {
    use tch::Kind;
    let dir = tempfile::tempdir().unwrap();
    // A gentle fine-tune keeps stage 1's polarity detector, so the policy's images (which
    // break the label) and the raw ones score far apart whatever the machine's floats.
    let mut s = Session::new(polarity().with_finetune(1, Some(1e-4)), dir.path()).unwrap();
    s.pretrain(None).unwrap();
    let policy: augwise::policy::Policy = "pair:Invert+Equalize".parse().unwrap();
    let (t, trainer) = s.trajectory_with_model(&policy, 0).unwrap();
    let probe = s.probe(&policy, Some(1)).unwrap();
    assert_eq!(
        probe.trajectories[0].reward, t.reward,
        "the inspected trajectory is probe's"
    );
    let val = &s.splits.val;
    let by_hand = tch::no_grad(|| {
        let logits = trainer
            .model
            .forward_t(&trainer.normalize.apply(&val.images).unwrap(), false)
            .unwrap();
        logits
            .argmax(1, false)
            .eq_tensor(&val.labels)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    });
    assert!(
        (t.accuracies.last().unwrap() - by_hand).abs() < 1e-12,
        "{:?} vs {by_hand}",
        t.accuracies
    );
    // The same model on validation images put through the policy scores differently.
    let mut rng = augwise::rng::Rng::new(0);
    let (augmented, _) = policy
        .sampler()
        .unwrap()
        .apply(&val.images, &s.pipeline.ops, &mut rng)
        .unwrap();
    let on_augmented = tch::no_grad(|| {
        let logits = trainer
            .model
            .forward_t(&trainer.normalize.apply(&augmented).unwrap(), false)
            .unwrap();
        logits
            .argmax(1, false)
            .eq_tensor(&val.labels)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    });
    assert!(
        (on_augmented - by_hand).abs() > 0.1,
        "Invert must matter on polarity data: {on_augmented} vs {by_hand}"
    );
}

/// The best θ is the θ its rewards were measured under (θ before the update that used them),
/// and stage 2 refuses to run from a half-finished stage 1.
#[test]
fn best_theta_is_the_one_that_earned_its_reward() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(tiny().with_pretrain_epochs(2), dir.path()).unwrap();
    s.pretrain(Some(1)).unwrap();
    assert!(matches!(
        s.evaluate(None),
        Err(SearchError::Stage1Incomplete { done: 1, total: 2 })
    ));
    assert!(s
        .probe(&"none".parse().unwrap(), None)
        .unwrap_err()
        .to_string()
        .contains("stage 1 is not complete (1 of 2 epochs)"));
    s.pretrain(None).unwrap();
    let first = s.step(1).unwrap().steps[0].update.clone();
    let best = s.best.clone().unwrap();
    assert_eq!((best.update, best.mean_reward), (1, first.ppo.mean_reward));
    assert_eq!(
        best.theta,
        augwise::policy::Theta::uniform(),
        "update 1's rewards were earned by the uniform θ"
    );
    let theta_1 = s.ppo.theta.clone();
    let second = s.step(1).unwrap().steps[0].update.clone();
    let best = s.best.clone().unwrap();
    if second.ppo.mean_reward > first.ppo.mean_reward {
        assert_eq!((best.update, &best.theta), (2, &theta_1));
    } else {
        assert_eq!((best.update, &best.theta), (1, &augwise::policy::Theta::uniform()));
    }
    assert_eq!(second.reward.n, 2);
    assert!(second.to_string().contains("95% CI"));
    // One θ everywhere: `policy` and `null` judge the best θ that `export` writes, with its
    // interval and the upward bias of taking the highest of several noisy means.
    let best = s.best.clone().unwrap();
    assert_eq!(best.reward.n, 2, "the best θ carries its update's interval");
    assert!(best.selection_bias > 0.0 || second.reward.sd == 0.0 && first.reward.sd == 0.0);
    let policy = s.policy(3).unwrap();
    assert_eq!(policy.best.map(|b| b.update), Some(best.update));
    let entropy = best.theta.distribution().unwrap().entropy();
    assert_eq!(policy.entropy, entropy, "policy shows the best θ");
    assert!(
        policy
            .to_string()
            .starts_with(&format!("best θ, update {}", best.update)),
        "{policy}"
    );
    let null = s.null(Some(10)).unwrap();
    assert_eq!(null.theta_after, Some(best.update - 1));
    assert!(
        (null.kl_from_uniform - ((1296f64).ln() - entropy)).abs() < 1e-9,
        "the null judges the best θ"
    );
    assert!(
        null.to_string()
            .contains(&format!("θ after {} updates", best.update - 1)),
        "{null}"
    );
}

/// `null` replays the search on permuted rewards, judges θ, is kept in the checkpoint and
/// shown by `policy` and `history` until the next update.
#[test]
fn null_is_judged_kept_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(tiny(), dir.path()).unwrap();
    s.pretrain(None).unwrap();
    assert!(s.null(Some(10)).unwrap_err().to_string().contains("no updates yet"));
    s.step(2).unwrap();
    let n = s.null(Some(20)).unwrap();
    assert_eq!((n.replicates, n.updates, n.ops.len()), (20, 2, 72));
    assert!((0.0..=1.0).contains(&n.p_value));
    let score = n
        .score
        .as_ref()
        .expect("a search recorded with op counts gets the score test");
    assert_eq!(
        (score.updates, score.trajectories, score.ops.len()),
        (2, 2 * tiny().trajectories, 72)
    );
    assert_eq!(n.p_value, score.p_value, "the score test is the verdict's primary test");
    assert!(n.to_string().lines().last().unwrap().starts_with("The search"), "{n}");
    assert_eq!(s.policy(5).unwrap().null.as_ref(), Some(&n));
    assert!(s.history.to_string().contains(&n.verdict()));
    let again = s.null(Some(20)).unwrap();
    assert_eq!(again, n, "the same seed replays the same null");
    let r = Session::resume(dir.path()).unwrap();
    assert_eq!(r.current_null(), Some(&n));
    // The resumed session took the run directory over: the old one may no longer write.
    let e = s.step(1).unwrap_err().to_string();
    assert!(e.contains("no longer owns"), "{e}");
    let mut s = r;
    s.step(1).unwrap();
    assert!(s.policy(5).unwrap().null.is_none(), "a null judges the θ it was run at");
    assert!(s.policy(5).unwrap().to_string().contains("`null`"));
}

#[test]
fn sample_lists_pairs_with_probabilities_and_previews_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(tiny(), dir.path()).unwrap();
    let a = s.sample(6).unwrap();
    assert_eq!(a.pairs.len(), 6);
    assert!(a.pairs.iter().all(|(_, _, p)| (p - 1.0 / 1296.0).abs() < 1e-12));
    assert_eq!(a.preview_shape, vec![6, 1, 16, 16]);
    assert_eq!(a.preview_original.len(), 6 * 256);
    assert_ne!(a.preview_original, a.preview_augmented);
    assert_eq!(a.preview_ops.len(), 6);
    assert!(a.preview_ops[0].contains(" + "), "{:?}", a.preview_ops);
    let b = s.sample(6).unwrap();
    assert_ne!(a.pairs, b.pairs, "each call draws afresh");
    assert!(a.to_string().contains("π(pair)"));
}

/// Trajectories spread over several devices (here two CPU "devices", two threads — the code
/// path multi-GPU machines take, one trajectory per GPU) give exactly the sequential result.
#[test]
fn parallel_trajectories_equal_sequential_ones() {
    use augwise::device::DeviceSpec;
    let run = |devices: Vec<DeviceSpec>| {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = tiny().with_trajectories(3);
        cfg.trajectory_devices = devices;
        let mut s = Session::new(cfg, dir.path()).unwrap();
        s.pretrain(None).unwrap();
        let e = s.evaluate(None).unwrap();
        e.trajectories
            .iter()
            .map(|t| (t.seed, t.reward, t.counts.clone()))
            .collect::<Vec<_>>()
    };
    let sequential = run(vec![]);
    let parallel = run(vec![DeviceSpec::Cpu, DeviceSpec::Cpu]);
    assert_eq!(sequential.len(), 3);
    assert_eq!(sequential, parallel);
}

/// `trajectory_batch` (issue 13): an update's trajectories trained together as one grouped
/// model give the sequential trajectories — the same seeds and pair counts exactly, rewards
/// within one validation image (float reassociation) — and diverging ones are still dropped.
/// The `pairs_per_trajectory` variant: each search trajectory applies only the K pairs it drew
/// up front (and says so), the grouped path draws the same, and probes keep sampling per image.
#[test]
fn pairs_per_trajectory_limits_each_trajectory_to_its_drawn_pairs() {
    let run = |batch: usize| {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = tiny().with_trajectories(3).with_pairs_per_trajectory(2);
        cfg.trajectory_batch = batch;
        let mut s = Session::new(cfg, dir.path()).unwrap();
        s.pretrain(None).unwrap();
        let e = s.evaluate(None).unwrap();
        let probe = s.probe(&"aws:uniform".parse().unwrap(), Some(1)).unwrap();
        (e, probe)
    };
    let (seq, probe) = run(1);
    for t in &seq.trajectories {
        assert_eq!(t.pairs_drawn, 2);
        let used = t.counts.iter().filter(|&&c| c > 0).count();
        assert!((1..=2).contains(&used), "{used} pairs applied");
    }
    let distinct: std::collections::BTreeSet<Vec<u32>> = seq.trajectories.iter().map(|t| t.counts.clone()).collect();
    assert_eq!(distinct.len(), 3, "each trajectory draws its own pairs");
    assert!(
        probe.trajectories[0].counts.iter().filter(|&&c| c > 0).count() > 2,
        "probes sample per image"
    );
    assert_eq!(probe.trajectories[0].pairs_drawn, 0);
    let (bat, _) = run(2);
    let counts =
        |e: &augwise::search::EvaluateReport| e.trajectories.iter().map(|t| t.counts.clone()).collect::<Vec<_>>();
    assert_eq!(counts(&seq), counts(&bat));
}

#[test]
fn batched_trajectories_equal_sequential_ones() {
    let run = |batch: usize, lr: Option<f64>| {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = tiny().with_trajectories(3);
        cfg.trajectory_batch = batch;
        if let Some(lr) = lr {
            cfg = cfg.with_finetune(1, Some(lr));
        }
        let mut s = Session::new(cfg, dir.path()).unwrap();
        s.pretrain(None).unwrap();
        let val = s.splits.val.len() as f64;
        let first = s.evaluate(None).unwrap();
        // A second evaluate with other seeds: the batched path reuses its grouped model.
        let second = s.evaluate(None).unwrap();
        (first, second, val)
    };
    let (seq1, seq2, val) = run(1, None);
    let (bat1, bat2, _) = run(2, None); // a chunk of 2, then 1: both paths, then both reused
    assert_eq!(seq1.trajectories.len(), 3);
    for (sequential, batched) in [(&seq1, &bat1), (&seq2, &bat2)] {
        for (a, b) in sequential.trajectories.iter().zip(&batched.trajectories) {
            assert_eq!((a.seed, &a.counts), (b.seed, &b.counts));
            assert!(
                (a.reward - b.reward).abs() <= 1.0 / val + 1e-12,
                "{} vs {}",
                a.reward,
                b.reward
            );
        }
    }
    let (diverged, _, _) = run(3, Some(1e30));
    assert_eq!(diverged.trajectories.len(), 0);
    assert_eq!(diverged.discarded.len(), 3, "{diverged}");
}

/// Trajectory i of a probe or compare has a data order of its own (shared by every policy's
/// trajectory i, so pairs keep their common random numbers), and a run written before
/// `data_order` existed resumes with the shared order it ran with.
#[test]
fn each_trajectory_has_its_own_data_order_and_old_runs_keep_theirs() {
    use augwise::search::DataOrder;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(tiny(), dir.path()).unwrap();
    assert_eq!(s.config.data_order, DataOrder::PerTrajectory);
    let orders: std::collections::BTreeSet<u64> = (0..6).map(|i| s.probe_seeds(i).order).collect();
    assert_eq!(orders.len(), 6, "six trajectories, six data orders");
    assert!(!orders.contains(&s.config.seed), "not stage 1's order");
    s.pretrain(None).unwrap();
    drop(s);
    let state = dir.path().join("session.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(v["config"]["data_order"], "per_trajectory");
    v["config"].as_object_mut().unwrap().remove("data_order");
    std::fs::write(&state, serde_json::to_string(&v).unwrap()).unwrap();
    let old = Session::resume(dir.path()).unwrap();
    assert_eq!(old.config.data_order, DataOrder::Shared);
    assert!((0..6).all(|i| old.probe_seeds(i).order == old.config.seed));
}

/// Every file under `dir` with its bytes.
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A new session, `save` or `reset DIR` on a directory that holds a run is refused and the run
/// stays byte for byte as it was; a default directory gives way to a free sibling instead, and
/// `reset` without a directory starts the new run beside the old one (issue 24).
#[test]
fn a_finished_run_is_never_replaced() {
    use augwise::command::{free_run_dir, OnExistingRun, Shell};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    {
        let mut s = Session::new(tiny(), &dir).unwrap();
        s.pretrain(None).unwrap();
        s.step(1).unwrap();
    }
    let before = tree(&dir);

    let e = Session::new(tiny(), &dir).unwrap_err();
    assert!(matches!(e, SearchError::RunExists { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("update(s)") && e.contains(&format!("resume {}", dir.display())),
        "{e}"
    );
    let mut other = Session::new(tiny(), root.path().join("other")).unwrap();
    other.pretrain(None).unwrap();
    let e = other.save(Some(&dir)).unwrap_err().to_string();
    assert!(e.contains("already holds a run"), "{e}");
    drop(other);

    // The REPL's shell on the directory the user named: refused at the first command that
    // needs a session; `reset DIR` elsewhere works.
    let mut sh = Shell::new(tiny(), &dir);
    let e = sh.run("pretrain").unwrap_err().to_string();
    assert!(e.contains("already holds a run"), "{e}");
    assert_eq!(tree(&dir), before, "a refused session changed the run directory");
    let elsewhere = root.path().join("elsewhere");
    let out = sh.run(&format!("reset {}", elsewhere.display())).unwrap();
    assert!(out.text.contains(&elsewhere.display().to_string()), "{}", out.text);
    sh.run("pretrain").unwrap();
    // `reset` after a run started: the old run stays, the new one goes beside it.
    let out = sh.run("reset").unwrap();
    let sibling = root.path().join("elsewhere-2");
    assert!(out.text.contains(&sibling.display().to_string()), "{}", out.text);
    assert_eq!(sh.run_dir, sibling);
    assert!(elsewhere.join("session.json").exists());
    drop(sh);

    // A default directory: the session goes to the first free sibling and says so.
    let mut sh = Shell::new(tiny(), &dir).with_on_existing(OnExistingRun::NextFree);
    let out = sh.run("pretrain").unwrap();
    let second = root.path().join("run-2");
    assert!(
        out.text.starts_with("note: ") && out.text.contains(&second.display().to_string()),
        "{}",
        out.text
    );
    assert_eq!(sh.run_dir, second);
    drop(sh);
    assert_eq!(tree(&dir), before, "the earlier run changed");
    assert_eq!(free_run_dir(&dir), root.path().join("run-3"));
    assert_eq!(free_run_dir(&second), root.path().join("run-3"));
    assert_eq!(free_run_dir(&root.path().join("fresh")), root.path().join("fresh"));
    // And the earlier run resumes exactly where it was.
    let r = Session::resume(&dir).unwrap();
    assert_eq!(r.ppo.updates, 1);
}
