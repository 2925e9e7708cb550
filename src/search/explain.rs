//! `explain [topic]`: the formulas and settings of each stage of the method, with this session's values,
//! for teaching. The text follows docs/method.md.

use super::SearchConfig;

use crate::suggest::Named;

/// What `explain` explains: the method's stages, the search space and its noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Topic {
    #[default]
    Overview,
    Space,
    Pretrain,
    Sample,
    Evaluate,
    Update,
    Fulltrain,
    Noise,
}

impl Named for Topic {
    const ALL: &'static [Self] = &[
        Topic::Overview,
        Topic::Space,
        Topic::Pretrain,
        Topic::Sample,
        Topic::Evaluate,
        Topic::Update,
        Topic::Fulltrain,
        Topic::Noise,
    ];
    const WHAT: &'static str = "topic";

    fn name(self) -> &'static str {
        match self {
            Topic::Overview => "overview",
            Topic::Space => "space",
            Topic::Pretrain => "pretrain",
            Topic::Sample => "sample",
            Topic::Evaluate => "evaluate",
            Topic::Update => "update",
            Topic::Fulltrain => "fulltrain",
            Topic::Noise => "noise",
        }
    }
}

/// The explanation of `topic`, with `cfg`'s settings filled in.
pub fn explain(topic: Topic, cfg: &SearchConfig) -> String {
    let r = &cfg.recipe;
    let lr1 = cfg.finetune_lr.map(|l| format!("{l}")).unwrap_or_else(|| {
        format!(
            "{} (stage 1's final rate)",
            cfg.stage1_train_config().schedule.final_lr()
        )
    });
    let clip = r.grad_clip.map_or_else(
        || "no gradient clipping".to_owned(),
        |c| format!("gradient-norm clip {c}"),
    );
    match topic {
        Topic::Overview => format!(
            "AWS — Augmentation-Wise Weight Sharing (Tian et al., NeurIPS 2020)\n\
             Goal: θ* = argmax_θ ACC(ω*_θ; D_val), ω*_θ = argmin_ω L_train(ω; θ).\n\
             Observation: augmentation matters mostly late in training, so the early part is\n\
             trained once with all augmentations mixed (shared weights), and each candidate θ is\n\
             scored by fine-tuning only the late part from those weights.\n\
             Steps: pretrain → (evaluate → update) × {} → best θ → fulltrain.\n\
             This session: {} on {}, {} pretrain epochs, {} fine-tune epochs per trajectory,\n\
             {} trajectories per update. `explain <topic>` for: {}.",
            cfg.updates,
            cfg.model,
            cfg.data,
            cfg.pretrain_epochs,
            cfg.finetune_epochs,
            cfg.trajectories,
            Topic::names().join(", ")
        ),
        Topic::Space => "Search space: 14 ops; 11 with a magnitude kept at levels 3, 6, 9 of AutoAugment's\n\
             10-level grid, 3 without — 36 operations. An augmentation is an ordered pair (op1,\n\
             op2) of them: 1,296 candidates, both always applied, signed ops with a random sign.\n\
             θ = (a ∈ R³⁶, B ∈ R³⁶ˣ³⁶): p(op1, op2) = softmax(a)[op1] · softmax(B[op1])[op2];\n\
             θ = 0 is uniform. Every image of every batch draws its own pair.\n\
             Pipeline: crop (pad size/8) → flip (if allowed) → pair → Cutout (size/2) → normalise."
            .to_owned(),
        Topic::Pretrain => format!(
            "Stage 1 — shared-weight pretraining: train on search-train with pairs drawn uniformly\n\
             per image. SGD{} (momentum {}, weight decay {}, none on BN and biases),\n\
             batch {}, warm-up {} epoch(s) {} → {}, cosine to {} over {} epochs, label smoothing\n\
             {}, {clip}. Kept: the weights ω_share and the momentum buffers.\n\
             Official: WRN-28-10, 200 epochs, batch 256, momentum 0.9, weight decay 1e-4, label\n\
             smoothing 0.05, clip 3.0. `pretrain N` runs N more epochs of the same schedule; pieces\n\
             give the same result as one go.",
            if r.nesterov { " Nesterov" } else { "" },
            r.momentum,
            r.weight_decay,
            cfg.batch_size,
            r.warmup_epochs.min(cfg.pretrain_epochs as f64),
            cfg.pretrain_lr * r.warmup_start,
            cfg.pretrain_lr,
            r.lr_floor,
            cfg.pretrain_epochs,
            r.label_smoothing,
        ),
        Topic::Sample => "Sampling: op1 ~ softmax(a), op2 ~ softmax(B[op1]), independently per image; each\n\
             signed op flips its sign with probability 1/2. `sample n` shows n draws with their\n\
             probabilities and previews them on validation images."
            .to_owned(),
        Topic::Evaluate => format!(
            "Stage 2 — one trajectory: reset weights and momentum to the stage-1 snapshot;\n\
             fine-tune {} epochs at a constant rate of {}, pairs drawn per image from θ;\n\
             after each epoch measure top-1 accuracy on the validation split (never test).\n\
             reward = mean of the {} best epoch accuracies. The pair counts of the trajectory\n\
             are kept for the update. Official: 10 epochs (5% of stage 1), 8 trajectories.",
            cfg.finetune_epochs, lr1, cfg.reward_top
        ),
        Topic::Update => format!(
            "Policy update (PPO) from the waiting trajectories, all sampled under θ_old:\n\
             b ← {m}·b + (1 − {m})·mean(R)   (b starts at the first mean reward)\n\
             A_t = (R_t − b) × {u} × {s}   (rewards in percent, the official units)\n\
             r_k = π_new(k) / π_old(k)   (the released code inverts this; that is a bug)\n\
             L = mean_t Σ_k f_t(k) · min(r_k·A_t, clip(r_k, {lo}, {hi})·A_t), f_t = pair frequency\n\
             Adam (β = 0.5, 0.999), at most {n} steps. Each step measures KL(π_old‖π_θ) at the θ it\n\
             starts from; when that exceeds {kl} the step is still taken and is the last (the official\n\
             schedule). lr {a} → {b} linearly over the first {w} updates. No entropy bonus.\n\
             The θ with the best mean reward is kept as the result: the θ its rewards were measured\n\
             under, not the one its update produced.",
            m = cfg.ppo.baseline_momentum,
            u = cfg.ppo.reward_unit,
            s = cfg.ppo.advantage_scale,
            lo = 1.0 - cfg.ppo.clip,
            hi = 1.0 + cfg.ppo.clip,
            n = cfg.ppo.max_inner_steps,
            kl = cfg.ppo.kl_stop,
            a = cfg.ppo.lr_start,
            b = cfg.ppo.lr,
            w = cfg.ppo.warmup_updates
        ),
        Topic::Fulltrain => format!(
            "After the search: retrain from scratch on search-train + validation with pairs drawn\n\
             per image from the best θ ({} epochs here, official 300; rate {} → {} over {} epochs, cosine\n\
             to {}) and report the final-epoch test error. `correlate` does this for several policies and\n\
             compares the ranking with the proxy's (Kendall τ, Spearman ρ, with intervals and permutation p-values): the\n\
             paper's claim is that they agree.",
            cfg.fulltrain_epochs,
            cfg.fulltrain_schedule.start,
            cfg.fulltrain_schedule.peak,
            cfg.fulltrain_schedule.warmup_epochs,
            cfg.fulltrain_schedule.floor
        ),
        Topic::Noise => format!(
            "Noise, and what a result needs to be trusted. Two trajectories of one θ differ: the\n\
             reward moves with the data order, crops, flips, Cutout holes and θ's own draws. So every\n\
             reward is shown with a 95% interval across trajectories (mean ± t·sd/√k); `sd` is one\n\
             trajectory's noise. Reading them:\n\
             • Intervals that overlap do not mean equal. `compare A B k` pairs the two policies'\n\
               trajectories with common random numbers (same data order, crops, flips, holes; only the\n\
               policies' own draws differ), so the noise they share cancels. It gives the difference\n\
               with its interval (from the same test, so it excludes 0 exactly when p < 0.05), an\n\
               exact sign-flip p-value (k ≤ 20), a verdict, and the k with which this test would find\n\
               a true difference of the size seen with 80% power. A verdict of \"no difference\n\
               detectable with k = …\" means just that, not \"equal\". Several policies: all pairs,\n\
               Holm-corrected.\n\
             • θ always moves: Adam steps by about its learning rate whatever the rewards say, so a\n\
               search on pure noise changes θ too, and where θ ended is weak evidence. `null` asks the\n\
               question PPO's gradient rests on: within each update, do the trajectories that drew an\n\
               op more often have higher (or lower) rewards? Its score test (primary, the verdict's p)\n\
               compares that association, summed over updates, with the same rewards shuffled across\n\
               each update's trajectories 1,000 times, and names the ops whose |z| stands out. Beside\n\
               it, {} null searches on shuffled rewards show how far θ moves on noise (KL from uniform\n\
               and each op's marginal against simultaneous 95% bands).\n\
             • The faithful search draws a pair per image: with thousands of images a trajectory's op\n\
               shares barely differ from another's, so its reward carries almost no information about\n\
               θ (docs/signal-study.md: hundreds of updates to see a label-breaking op). The opt-in\n\
               variant `config pairs_per_trajectory=16` (ours, not the paper's) lets each trajectory\n\
               draw 16 pairs up front and its images draw among them — far more signal per trajectory.\n\
               Its results are judged against the same null.\n\
             • The best θ is the highest of several noisy means, so it looks better than it is (the\n\
               update line shows by how much selection alone lifts it): check it with `compare`\n\
               against `aws:uniform` on fresh trajectories. `policy`, `null` and `export` all mean it.\n\
             • Running `null` after every step and stopping at the first \"found\" is optional\n\
               stopping: every look is another 5% chance of a false alarm. Decide the updates first.",
            cfg.null_replicates
        ),
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn every_stage_explains_with_the_session_settings() {
        let cfg = SearchConfig::cpu().with_trajectories(5);
        for &topic in Topic::ALL {
            let text = explain(topic, &cfg);
            assert!(text.len() > 200, "{topic:?}: {text}");
        }
        assert!(explain(Topic::Overview, &cfg).contains("5 trajectories per update"));
        assert!(explain(Topic::Update, &cfg).contains("π_new(k) / π_old(k)"));
        // The numbers are the session's, not prose.
        let mut changed = cfg.clone();
        changed.set("recipe.weight_decay", "0.0005").unwrap();
        changed.set("recipe.grad_clip", "null").unwrap();
        changed.set("finetune_lr", "null").unwrap();
        let text = explain(Topic::Pretrain, &changed);
        assert!(
            text.contains("weight decay 0.0005") && text.contains("no gradient clipping"),
            "{text}"
        );
        let text = explain(Topic::Evaluate, &changed);
        assert!(text.contains("rate of 0.001 (stage 1's final rate)"), "{text}");
        let e = Topic::parse_named("pretrian").unwrap_err();
        assert!(e.contains("did you mean `pretrain`"), "{e}");
    }
}
