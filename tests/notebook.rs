//! The notebook face: `run("…")` and the typed API give the same results, every result
//! renders richly (HTML tables, inline SVG charts, PNG image grids, one block per cell), and
//! a dropped notebook (what evcxr does on an interrupt or panic) comes back with
//! `Notebook::resume` exactly as its last checkpoint; the committed notebooks are clean nbformat 4.5.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use augwise::notebook::Notebook;
use augwise::present::{evcxr_message, Rich};

/// A report with its wall-clock figures zeroed: two identical runs differ in nothing else.
fn timeless(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                *x = if k == "seconds" || k == "images_per_sec" {
                    0.into()
                } else {
                    timeless(x.take())
                };
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| *x = timeless(x.take())),
        _ => {}
    }
    v
}

#[test]
fn run_and_the_typed_api_give_the_same_search() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut by_command = Notebook::new(common::tiny_config(), a.path()).unwrap();
    let mut typed = Notebook::new(common::tiny_config(), b.path()).unwrap();

    let p1 = by_command.run("pretrain").unwrap();
    let p2 = typed.pretrain(None).unwrap();
    assert_eq!(timeless(p1.data), timeless(serde_json::to_value(&p2).unwrap()));

    // Same rewards, same PPO outcome.
    let s1 = by_command.run("step 1").unwrap();
    let s2 = typed.step(1).unwrap();
    assert_eq!(timeless(s1.data.clone()), timeless(serde_json::to_value(&s2).unwrap()));
    assert_eq!(by_command.session().unwrap().theta(), typed.session().unwrap().theta());
    // Rendered the same way: the command's HTML is the report's.
    assert!(
        s1.html().contains("<table") && s1.html().contains("reward"),
        "{}",
        s1.html()
    );

    let q1 = by_command.run("policy 5").unwrap();
    let q2 = typed.policy(5).unwrap();
    assert_eq!(q1.html(), q2.html());
    assert!(
        q1.html().contains("<svg") && q1.html().contains("Rotate:20"),
        "policy shows its marginals chart"
    );

    let probe = typed.probe("pair:Rotate:20+Invert").unwrap();
    assert!(probe.html().contains("proxy reward of pair:Rotate:20+Invert"));
    assert!(typed
        .probe("pair:Rotat+Invert")
        .unwrap_err()
        .to_string()
        .contains("did you mean"));
    assert!(typed
        .chart("reward")
        .unwrap_err()
        .to_string()
        .contains("did you mean `rewards`"));
}

#[test]
fn every_result_renders_html_with_a_text_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let mut nb = Notebook::new(common::tiny_config(), dir.path()).unwrap();
    let cell = nb
        .run_all(&[
            "pretrain",
            "step 1",
            "plot rewards",
            "sample 4",
            "plot theta",
            "history",
        ])
        .unwrap();
    let msg = evcxr_message(&cell.html(), &cell.to_string());
    // One block per MIME type, whatever the number of results (evcxr keeps only the last).
    assert_eq!(msg.matches("EVCXR_BEGIN_CONTENT text/html").count(), 1);
    assert_eq!(msg.matches("EVCXR_BEGIN_CONTENT text/plain").count(), 1);
    let html = cell.html();
    assert!(
        html.matches("<svg").count() >= 4,
        "rewards, theta, and history's two charts inline as SVG"
    );
    assert!(
        html.contains("data:image/png;base64,"),
        "the sample's image grid is a PNG"
    );
    assert!(html.contains("baseline (EMA)") && html.contains("θ: p(op1, op2)"));
    assert!(html.contains("<table") && html.contains("π(pair)"));
    assert!(!html.contains("EVCXR"), "content never contains the protocol's markers");
    // Text fallback: what the REPL prints.
    let text = cell.to_string();
    assert!(
        text.contains("stage 1: 2 of 2 epochs done") && text.contains("update   1") && text.contains("wrote"),
        "{text}"
    );

    let chart = nb.chart("marginals").unwrap();
    assert!(chart.html().starts_with("<div") && chart.html().contains("<svg"));
    let grid = nb.chart("images").unwrap();
    assert!(grid.html().contains("data:image/png;base64,") && !grid.html().contains("<svg"));
    let d = augwise::device::Diagnostics::collect();
    assert!(d.html().starts_with("<pre") && d.html().contains("torch"));
}

#[test]
fn a_dropped_notebook_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (theta, history, status) = {
        let mut nb = Notebook::new(common::tiny_config(), dir.path()).unwrap();
        nb.pretrain(None).unwrap();
        nb.step(1).unwrap();
        // A step cancelled part-way (a kernel interrupt), then every variable dropped.
        common::cancel_at_event(nb.session().unwrap(), 3);
        assert!(nb.step(1).unwrap_err().to_string().contains("cancelled"));
        let s = nb.session().unwrap();
        (s.theta().clone(), s.history.clone(), s.status())
    };
    let mut back = Notebook::resume(dir.path()).unwrap();
    assert_eq!(back.status(), status);
    let s = back.session().unwrap();
    assert_eq!(s.theta(), &theta);
    assert_eq!(s.history, history);
    assert_eq!(s.ppo.updates, 1);
    // And it goes on.
    assert_eq!(back.step(1).unwrap().steps[0].update.update, 2);
    let missing = Notebook::resume(dir.path().join("nope")).unwrap_err().to_string();
    assert!(missing.contains("nope"), "{missing}");
    // The notebook's own resume cell runs while the first `s` is still alive (no interrupt):
    // the new session takes the directory over, the old one is dropped after, and the new
    // one goes on.
    let again = Notebook::resume(dir.path()).unwrap();
    drop(back);
    let mut again = again;
    assert!(again.policy(3).is_ok());
    assert_eq!(again.step(1).unwrap().steps[0].update.update, 3);
}

/// The notebooks as committed: nbformat 4.5 (every cell a unique id, which nbformat will soon
/// require), and no stored outputs — what a reader sees comes from running them here.
#[test]
fn committed_notebooks_have_cell_ids_and_no_outputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("ipynb") {
            continue;
        }
        seen += 1;
        let nb: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            (nb["nbformat"].as_u64(), nb["nbformat_minor"].as_u64()),
            (Some(4), Some(5)),
            "{path:?}"
        );
        let mut ids = std::collections::HashSet::new();
        for (i, cell) in nb["cells"].as_array().unwrap().iter().enumerate() {
            let id = cell["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{path:?}: cell {i} has no id"));
            assert!(ids.insert(id.to_owned()), "{path:?}: cell {i} repeats id {id}");
            if cell["cell_type"] == "code" {
                assert_eq!(
                    cell["outputs"],
                    serde_json::json!([]),
                    "{path:?}: cell {i} has stored outputs"
                );
            }
        }
    }
    assert!(seen >= 3, "found {seen} notebooks in {dir:?}");
}
