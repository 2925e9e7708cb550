//! Every command of the table, driven through `Shell::run` as the REPL and notebooks drive it:
//! arguments checked before anything runs, typos answered with the nearest name, and each
//! command's output (text and data) as it should be.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use augwise::command::{split, CommandError, Shell, COMMANDS};
use augwise::suggest::Named;

fn shell(dir: &std::path::Path) -> Shell {
    Shell::new(common::tiny_config(), dir)
}

#[test]
fn every_command_in_help_runs_through_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut sh = shell(dir.path());
    let help = sh.run("help").unwrap();
    for c in COMMANDS {
        assert!(help.text.contains(&c.usage()), "help lacks {}", c.name);
    }
    assert!(sh.status().contains("not started"));
    let expect = |sh: &mut Shell, line: &str, needle: &str| {
        let out = sh.run(line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
        assert!(out.text.contains(needle), "`{line}` printed:\n{}", out.text);
        out
    };
    expect(&mut sh, "help probe", "probe <policy>");
    let h = expect(&mut sh, "help compare", "example: compare ");
    // Every command's example parses as its own command would (the table checks its arguments).
    for c in COMMANDS {
        assert!(c.example.starts_with(c.name), "{}'s example: {}", c.name, c.example);
    }
    drop(h);
    let p = expect(&mut sh, "help policies", "Rotate:20");
    assert!(
        p.text.contains("subpolicies:") && p.text.contains("best") && p.text.lines().count() > 12,
        "{}",
        p.text
    );
    assert!(sh.run("probe best").unwrap_err().to_string().contains("no update yet"));
    expect(&mut sh, "explain update", "π_new(k) / π_old(k)");
    expect(&mut sh, "device", "torch");
    expect(&mut sh, "model resnet20", "model resnet20");
    let c = expect(&mut sh, "config trajectories=2", "trajectories = 2   (preset: ");
    assert_eq!(c.data["trajectories"], 2, "the data is the whole configuration");
    assert!(
        c.text.lines().count() < 20,
        "config lists what differs, not every field:\n{}",
        c.text
    );
    expect(&mut sh, "config slurm", "slurm.partition = ");
    expect(&mut sh, "config all", "\"trajectories\": 2");
    assert!(sh
        .run("config trajectorie")
        .unwrap_err()
        .to_string()
        .contains("did you mean `trajectories`"));
    expect(
        &mut sh,
        "data synthetic:kind=polarity,classes=2,n=24,size=16",
        "36 search-train / 12 val",
    );
    expect(&mut sh, "pretrain 1", "1 of 2 epochs");
    expect(&mut sh, "pretrain", "2 of 2 epochs");
    let s = expect(&mut sh, "sample 3", "π(pair)");
    let pv = expect(&mut sh, "preview pair:Invert+Invert 4", "Invert + Invert");
    assert!(pv.data["svg"].as_str().unwrap().starts_with("<svg"));
    expect(&mut sh, "preview none 2", "(nothing)");
    assert_eq!(s.data["pairs"].as_array().unwrap().len(), 3);
    expect(&mut sh, "evaluate 2", "2 trajectories waiting");
    let u = expect(&mut sh, "update", "update   1");
    assert_eq!(u.data["update"], 1);
    let st = expect(&mut sh, "step 1", "update   2");
    // --json consumers get named parts: each step's trajectories and the update they fed.
    assert_eq!(st.data["steps"][0]["update"]["update"], 2);
    assert_eq!(
        st.data["steps"][0]["evaluate"]["trajectories"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    expect(&mut sh, "policy 3", "entropy");
    // `best` is the searched θ wherever a policy goes.
    let b = expect(&mut sh, "compare best aws 2", "theta:");
    assert!(b.data["comparisons"][0]["difference"].is_number());
    expect(
        &mut sh,
        "probe pair:Rotate:20+Invert",
        "proxy reward of pair:Rotate:20+Invert",
    );
    expect(&mut sh, "probe none 2", "95% CI");
    let c = expect(
        &mut sh,
        "compare none pair:Invert+Solarize:0 2",
        "no difference detectable with k = 2",
    );
    assert_eq!(
        (c.data["difference"].as_f64(), c.data["p_value"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    assert!(c.data.get("ci95").is_some());
    // Two policies without k stop early: here nothing differs, so it runs its 20 pairs and
    // says so, with the anytime-valid test's evidence (E = 1: no bet ever won or lost).
    let e = expect(
        &mut sh,
        "compare none pair:Invert+Solarize:0",
        "ran all 20 pairs without the evidence crossing",
    );
    assert_eq!(e.data["early"]["pairs"], 20);
    assert_eq!(e.data["early"]["e_value"].as_f64(), Some(1.0));
    assert!(
        e.text.contains("no difference detectable within 20 pairs"),
        "{}",
        e.text
    );
    let c3 = expect(&mut sh, "compare none aws pair:Invert+Equalize 2", "Holm");
    assert_eq!(c3.data["comparisons"].as_array().unwrap().len(), 3);
    assert!(
        c3.data["p_value"].is_null(),
        "several pairs: no single p-value at the top"
    );
    assert!(sh
        .run("null 100000000")
        .unwrap_err()
        .to_string()
        .contains("100000000 null searches is past the limit of 10000"));
    assert!(sh
        .run("null 1")
        .unwrap_err()
        .to_string()
        .contains("1 null searches is too few: at least 2"));
    assert!(sh
        .run("probe none 1000000000")
        .unwrap_err()
        .to_string()
        .contains("past the limit of 1000"));
    assert!(sh
        .run("probe none 0")
        .unwrap_err()
        .to_string()
        .contains("0 trajectories is too few: at least 1"));
    assert!(sh
        .run("compare none aws 18446744073709551615")
        .unwrap_err()
        .to_string()
        .contains("past the limit of 1000"));
    let n = expect(&mut sh, "null 10", "The search");
    assert_eq!(n.data["replicates"], 10);
    expect(&mut sh, "policy 3", "null: 10 searches");
    expect(&mut sh, "fulltrain autoaugment 1", "final test accuracy");
    expect(&mut sh, "correlate none aws", "Kendall τ");
    expect(&mut sh, "history", "update   2");
    for chart in augwise::present::chart::ChartKind::names() {
        let out = expect(&mut sh, &format!("plot {chart}"), "wrote");
        let png = std::path::PathBuf::from(out.data["png_path"].as_str().unwrap());
        let img = image::load_from_memory(&std::fs::read(&png).unwrap()).unwrap();
        assert_eq!(
            (img.width() as u64, img.height() as u64),
            (
                out.data["width"].as_u64().unwrap(),
                out.data["height"].as_u64().unwrap()
            )
        );
        assert!(out.data["svg"].as_str().unwrap().starts_with("<svg"), "{chart}");
    }
    let r = expect(&mut sh, "plot rewards", "mean reward per update");
    let svg = r.data["svg"].as_str().unwrap();
    assert!(
        svg.contains("baseline (EMA)") && svg.contains("best mean reward") && svg.contains("update"),
        "rewards chart lacks its series"
    );
    let custom = dir.path().join("mine.svg");
    expect(&mut sh, &format!("plot theta {}", custom.display()), "mine.png");
    assert!(custom.exists());
    let export = dir.path().join("best.json");
    expect(&mut sh, &format!("export {}", export.display()), "exported");
    assert!(std::fs::read_to_string(&export).unwrap().contains("sub_policies"));
    // θ's logits load back as a policy with the same pair distribution as the json export.
    let theta = dir.path().join("theta.json");
    expect(&mut sh, &format!("export theta {}", theta.display()), "as theta");
    let from_logits: augwise::policy::Policy = format!("theta:{}", theta.display()).parse().unwrap();
    let from_export: augwise::policy::Policy = format!("theta:{}", export.display()).parse().unwrap();
    let (p, q) = (from_logits.distribution().unwrap(), from_export.distribution().unwrap());
    assert!(p.probs().iter().zip(q.probs()).all(|(a, b)| (a - b).abs() < 1e-12));
    let csv = expect(&mut sh, "export csv", "rank,pair,op1,op2,probability");
    let rows: Vec<&str> = csv.text.lines().skip(1).collect();
    assert_eq!(rows.len(), 36 * 36);
    let probs: Vec<f64> = rows
        .iter()
        .map(|r| r.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]) && (probs.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    let other = dir.path().join("copy");
    expect(&mut sh, &format!("save {}", other.display()), "checkpoint written");
    // `reset` starts beside the run it leaves, which stays as it was.
    expect(&mut sh, "reset", "copy-2");
    assert!(sh.status().contains("new · update 0"), "{}", sh.status());
    // The old session's trajectories are not drawn over the new one's stage 1.
    expect(&mut sh, "pretrain", "epochs done");
    let e = sh.run("plot trajectory").unwrap_err().to_string();
    assert!(e.contains("one `evaluate`"), "{e}");
    assert!(other.join("session.json").exists());
    expect(&mut sh, &format!("resume {}", other.display()), "update 2");
    assert!(sh.status().contains("update 2"));
    assert!(sh.run("quit").unwrap().quit);
}

/// `export POLICY` in the REPL is `augwise export POLICY`: any policy, no session needed, the
/// same document. A file outside the run directory is never replaced; the run's own are.
#[test]
fn export_takes_any_policy_and_never_replaces_a_users_file() {
    let home = tempfile::tempdir().unwrap();
    let run = home.path().join("run");
    let mut sh = shell(&run);
    let mine = home.path().join("aa.json");
    let spec = "pair:Rotate:20+Invert";
    let out = sh.run(&format!("export json {spec} {}", mine.display())).unwrap();
    assert!(out.text.contains(&format!("`{spec}` exported as json")), "{}", out.text);
    let policy: augwise::policy::Policy = spec.parse().unwrap();
    assert_eq!(out.data, augwise::policy::torchvision_export(&policy, 25));
    assert!(
        sh.status().contains("not started"),
        "a policy of its own needs no session"
    );
    let before = std::fs::read(&mine).unwrap();
    let e = sh
        .run(&format!("export none {}", mine.display()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("exists") && e.contains("another file name"), "{e}");
    assert_eq!(
        std::fs::read(&mine).unwrap(),
        before,
        "a refused export changes nothing"
    );
    // Shown, not written: the same document.
    assert_eq!(sh.run(&format!("export {spec}")).unwrap().data, out.data);
    let e = sh.run("export theta none").unwrap_err().to_string();
    assert!(e.contains("only the best θ has"), "{e}");
    let e = sh.run("export csv autoaugment:cifar10").unwrap_err().to_string();
    assert!(e.contains("no pair table"), "{e}");
    // The run's own export is refreshed.
    std::fs::create_dir_all(&run).unwrap();
    let own = run.join("policy.json");
    sh.run(&format!("export none {}", own.display())).unwrap();
    sh.run(&format!("export {spec} {}", own.display())).unwrap();
    assert!(std::fs::read_to_string(&own).unwrap().contains("Rotate"));
}

#[test]
fn arguments_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut sh = shell(dir.path());
    let err = |sh: &mut Shell, line: &str| sh.run(line).unwrap_err().to_string();
    let e = err(&mut sh, "pretrian 3");
    assert!(e.contains("did you mean `pretrain`"), "{e}");
    let e = err(&mut sh, "evaluate x");
    assert!(
        e.contains("expected a whole number") && e.contains("usage: evaluate [k]"),
        "{e}"
    );
    let e = err(&mut sh, "probe");
    assert!(e.contains("missing <policy>"), "{e}");
    let e = err(&mut sh, "probe autoaugmnt");
    assert!(e.contains("did you mean `autoaugment`"), "{e}");
    let e = err(&mut sh, "update now");
    assert!(e.contains("unexpected `now`"), "{e}");
    let e = err(&mut sh, "explain pretrian");
    assert!(e.contains("did you mean `pretrain`"), "{e}");
    let e = err(&mut sh, "model vgg");
    assert!(e.contains("unknown model"), "{e}");
    let e = err(&mut sh, "plot reward");
    assert!(e.contains("did you mean `rewards`"), "{e}");
    // Stopping early compares one pair of policies, with at most a count after `early`.
    let e = err(&mut sh, "compare none aws autoaugment:cifar10 early");
    assert!(e.contains("exactly two policies (got 3)"), "{e}");
    let e = err(&mut sh, "compare none aws early early");
    assert!(e.contains("only by the most pairs"), "{e}");
    let e = err(&mut sh, "compare none early aws");
    assert!(e.contains("unknown policy `early`"), "{e}");
    let e = err(&mut sh, "compare none aws early 0");
    assert!(e.contains("usage: compare"), "{e}");
    // A key alone shows it; one that is no setting says so, with the nearest name.
    let e = err(&mut sh, "config trajectorie");
    assert!(
        e.contains("no setting `trajectorie`") && e.contains("config KEY"),
        "{e}"
    );
    let e = err(&mut sh, "config trajectorys=3");
    assert!(e.contains("did you mean `trajectories`"), "{e}");
    let e = err(&mut sh, "export yaml");
    assert!(e.contains("unknown format") && e.contains("json, theta, csv"), "{e}");
    let e = err(&mut sh, "export thetaa out.json");
    assert!(e.contains("did you mean `theta`"), "{e}");
    // None of that built a session or changed the configuration.
    assert!(sh.status().contains("not started"));
    assert_eq!(sh.config.trajectories, 2);
    // A primitive out of order is an error, and the session goes on.
    assert!(matches!(sh.run("update"), Err(CommandError::Search(_))));
    assert!(sh.run("help").is_ok());
    assert!(sh.run("").unwrap().text.is_empty());
}

/// The lines a fuzzing run found that crashed the process (issue 11): each is now an error
/// naming the limit before anything is sized by it, and the shell goes on.
#[test]
fn huge_counts_and_endless_files_are_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let mut sh = shell(dir.path());
    let cases: [(&str, &str); 14] = [
        ("step 100000000", "limit of 10000"),
        ("step 18446744073709551615", "limit of 10000"),
        ("step 18446744073709551616", "expected a whole number"),
        ("evaluate 1000000000", "limit of 1000"),
        ("pretrain 10000000000", "limit of 100000"),
        ("sample 100000", "limit of 64"),
        ("null 99999999", "limit of 10000"),
        ("compare none aws:uniform 5000000", "limit of 1000"),
        ("config trajectories=100000000000", "trajectories"),
        ("config finetune_epochs=10000000000", "finetune_epochs"),
        ("config finetune_epochs=1e10", "finetune_epochs"),
        ("data synthetic:n=1e30", "whole number"),
        ("model wrn-16-100000", "at most 32"),
        ("probe theta:/dev/zero", "not a regular file"),
    ];
    for (line, expected) in cases {
        let e = sh.run(line).unwrap_err().to_string();
        assert!(e.contains(expected), "{line}: {e}");
    }
    let e = sh.run("data synthetic:n=100000000,size=256").unwrap_err().to_string();
    assert!(e.contains("GiB"), "{e}");
    assert_eq!(
        sh.config.trajectories, 2,
        "a refused config leaves the configuration as it was"
    );
    assert!(sh.run("help").is_ok());
}

#[test]
fn quoting_splits_like_a_shell() {
    assert_eq!(
        split("probe 'subpolicies:(Rotate,0.5,3)'").unwrap(),
        vec!["probe", "subpolicies:(Rotate,0.5,3)"]
    );
    assert_eq!(split("  save \"my run\"  ").unwrap(), vec!["save", "my run"]);
    assert_eq!(split("a '' b").unwrap(), vec!["a", "", "b"]);
    assert!(split("save 'oops").is_err());
}

#[test]
fn completion_and_hints_come_from_the_table() {
    use augwise::command::{completions, usage_hint};
    assert_eq!(
        completions("pre", 3).unwrap(),
        (0, vec!["pretrain".to_string(), "preview".to_string()])
    );
    assert_eq!(
        completions("help poli", 9).unwrap().1,
        vec!["policy".to_string(), "policies".to_string()]
    );
    assert_eq!(completions("compare none be", 15).unwrap().1, vec!["best".to_string()]);
    assert_eq!(
        completions("compare none aws ea", 19).unwrap().1,
        vec!["early".to_string()]
    );
    let (_, c) = completions("config slurm.par", 16).unwrap();
    assert_eq!(c, vec!["slurm.partition=".to_string()]);
    let (start, c) = completions("probe pair:Rot", 14).unwrap();
    assert_eq!(start, 6);
    assert!(c.contains(&"pair:Rotate:20".to_string()), "{c:?}");
    let (_, c) = completions("probe pair:Rotate:20+Inv", 24).unwrap();
    assert_eq!(c, vec!["pair:Rotate:20+Invert".to_string()]);
    let (_, c) = completions("correlate none auto", 19).unwrap();
    assert!(c.iter().all(|x| x.starts_with("autoaugment")) && c.len() == 3);
    assert_eq!(completions("explain upd", 11).unwrap().1, vec!["update".to_string()]);
    assert_eq!(completions("export th", 9).unwrap().1, vec!["theta".to_string()]);
    assert_eq!(completions("plot pro", 8).unwrap().1, vec!["probes".to_string()]);
    assert!(completions("model wrn", 9)
        .unwrap()
        .1
        .contains(&"wrn-28-10".to_string()));
    assert!(completions("config traj", 11)
        .unwrap()
        .1
        .contains(&"trajectories=".to_string()));
    assert!(completions("save ", 5).is_none(), "paths are the front-end's");
    assert_eq!(usage_hint("fulltrain ").as_deref(), Some("<policy> [epochs]"));
    assert_eq!(usage_hint("fulltrain aws ").as_deref(), Some("[epochs]"));
    assert_eq!(usage_hint("update "), None);
}

/// `data` builds a session to report the split; a `config` before anything runs applies to it
/// (a new user's `data …` then `config split.limit=…` used to run with the old split), while
/// after stage 1 the session keeps its configuration until `reset`.
#[test]
fn config_applies_to_a_session_that_has_not_run_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut sh = shell(dir.path());
    sh.run("data synthetic:kind=polarity,classes=2,n=24,size=16").unwrap();
    let out = sh.run("config split.limit=24 recipe.weight_decay=0.0005").unwrap();
    assert!(
        out.text.contains("starts again with this configuration"),
        "{}",
        out.text
    );
    let s = sh.session().unwrap();
    assert_eq!(s.splits.train.len() + s.splits.val.len(), 24);
    assert_eq!(s.config.recipe.weight_decay, 0.0005);
    sh.run("pretrain 1").unwrap();
    let out = sh.run("config recipe.weight_decay=0.001").unwrap();
    assert!(out.text.contains("keeps its configuration"), "{}", out.text);
    assert_eq!(sh.session().unwrap().config.recipe.weight_decay, 0.0005);
    assert_eq!(sh.session().unwrap().pretrain_epochs_done(), 1, "stage 1 kept");
    assert!(sh
        .run("config recipe.momentum=1.5")
        .unwrap_err()
        .to_string()
        .contains("recipe.momentum must be in [0, 1)"));
}

/// Where trajectories run is not what the search computes: `executor` and `slurm.*` apply to a
/// started session at once (persisted with its next checkpoint); a bad value is refused.
#[test]
fn the_executor_may_change_mid_search_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut sh = shell(dir.path());
    sh.run("data synthetic:kind=polarity,classes=2,n=24,size=16").unwrap();
    sh.run("pretrain 1").unwrap();
    let out = sh
        .run("config executor=slurm slurm.partition=gpu slurm.gres=gpu:1 slurm.extra=\"--qos=long --account=ml\"")
        .unwrap();
    assert!(out.text.contains("runs its trajectories this way"), "{}", out.text);
    let c = &sh.session().unwrap().config;
    assert_eq!(c.executor, augwise::search::Executor::Slurm);
    assert_eq!((c.slurm.partition.as_str(), c.slurm.gres.as_str()), ("gpu", "gpu:1"));
    assert_eq!(c.slurm.extra, ["--qos=long", "--account=ml"]);
    assert_eq!(sh.session().unwrap().pretrain_epochs_done(), 1, "stage 1 kept");
    let mut err = |line: &str| sh.run(line).unwrap_err().to_string();
    assert!(err("config executor=cluster").contains("unknown variant `cluster`, expected `local` or `slurm`"));
    assert!(err("config slurm.tries=0").contains("slurm.tries must be between 1 and 100"));
    assert!(err("config slurm.extra=qos").contains("not an sbatch option"));
    sh.run("config 'slurm.extra=[\"--qos=short\"]'").unwrap();
    assert_eq!(
        sh.session().unwrap().config.slurm.extra,
        ["--qos=short"],
        "a JSON list works too"
    );
    sh.run("config executor=local").unwrap();
    assert_eq!(sh.session().unwrap().config.executor, augwise::search::Executor::Local);
}

/// `plot`'s one-line help names every chart there is (it once left `compare` out).
#[test]
fn plot_help_names_every_chart() {
    use augwise::present::chart::ChartKind;
    use augwise::suggest::Named;
    let summary = augwise::command::COMMANDS
        .iter()
        .find(|c| c.name == "plot")
        .map(|c| c.summary)
        .unwrap();
    for kind in ChartKind::ALL {
        assert!(
            summary.contains(kind.name()),
            "`plot` help misses {}: {summary}",
            kind.name()
        );
    }
}
