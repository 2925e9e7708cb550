//! One handler per command: read the parsed arguments, call the session, shape the output.

use std::path::Path;

use serde_json::{json, Value};

use crate::policy::Policy;
use crate::present::{chart_html, pre};
use crate::search::{explain, SearchConfig, SearchError, Session};
use crate::suggest::Named;

use super::output::Html;
use super::{lookup, Arg, Args, CommandError, Output, Shell, COMMANDS};

pub(super) fn cmd_help(_: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    if let Some("policies") = args.text(0) {
        return Ok(Output::text("help", crate::policy::spec::help_text()));
    }
    if let Some(name) = args.text(0) {
        let c = lookup(name)?;
        return Ok(Output::text(
            "help",
            format!("{}\n  {}\n  example: {}", c.usage(), c.summary, c.example),
        ));
    }
    let width = COMMANDS.iter().map(|c| c.usage().len()).max().unwrap_or(0);
    let text = COMMANDS
        .iter()
        .map(|c| format!("{:<width$}  {}", c.usage(), c.summary))
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!(
        "{text}\n\n`help COMMAND` shows one with an example; `help policies` the policy specs and the 36 operations"
    );
    Ok(Output {
        data: json!(COMMANDS
            .iter()
            .map(|c| json!({"name": c.name, "usage": c.usage(), "summary": c.summary, "example": c.example}))
            .collect::<Vec<_>>()),
        ..Output::text("help", text)
    })
}

pub(super) fn cmd_explain(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let topic = args.find(|a| match a {
        Arg::Topic(s) => Some(*s),
        _ => None,
    });
    Ok(Output::text("explain", explain(topic.unwrap_or_default(), &sh.config)))
}

pub(super) fn cmd_device(_: &mut Shell, _: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("device", &crate::device::Diagnostics::collect()))
}

/// End the current session for a new one; a run that started keeps its directory, and the
/// new session goes to a free one beside it (said in the note).
pub(super) fn restart_note(sh: &mut Shell) -> &'static str {
    if sh.session.take().is_some() {
        sh.give_way();
        " (the previous session's checkpoints stay in its run directory)"
    } else {
        ""
    }
}

pub(super) fn cmd_data(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    if let Some(Arg::Data(d)) = args.0.first() {
        sh.config.data = d.clone();
    }
    let note = restart_note(sh);
    let s = sh.session()?;
    let (t, v, x) = (s.splits.train.len(), s.splits.val.len(), s.splits.test.len());
    Ok(Output::text(
        "data",
        format!(
            "data {}: {t} search-train / {v} val / {x} test images{note}",
            s.config.data
        ),
    ))
}

pub(super) fn cmd_model(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    if let Some(Arg::Model(m)) = args.0.first() {
        sh.config.model = *m;
    }
    let note = restart_note(sh);
    Ok(Output::text("model", format!("model {}{note}", sh.config.model)))
}

pub(super) fn cmd_config(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let mut next = sh.config.clone();
    let mut show = Vec::new();
    for a in &args.0 {
        match a {
            Arg::KeyValue(k, v) => next.set(k, v)?,
            Arg::Text(k) => show.push(k.clone()),
            _ => {}
        }
    }
    let changed = next != sh.config;
    let only_where = sh.config.same_search(&next);
    sh.config = next;
    let started = sh.session.as_ref().map(Session::started);
    let note = match (changed, started) {
        (true, Some(true)) if only_where => {
            // Where trajectories run is not part of what the search computes: it may change.
            if let Some(s) = sh.session.as_mut() {
                s.config.executor = sh.config.executor;
                s.config.slurm = sh.config.slurm.clone();
            }
            "\n(the running session runs its trajectories this way from its next step)"
        }
        (true, Some(true)) => "\n(the running session keeps its configuration; `reset` starts one with this)",
        (true, Some(false)) => {
            // Nothing has run: the session is rebuilt with this configuration when next used.
            sh.drop_session();
            "\n(the session had not run anything yet: it starts again with this configuration)"
        }
        _ => "",
    };
    let data = serde_json::to_value(&sh.config).unwrap_or(Value::Null);
    let text = config_text(&data, &show)?;
    Ok(Output {
        data,
        ..Output::text("config", format!("{text}{note}"))
    })
}

/// `config` as a person reads it: what differs from the nearest preset (the whole
/// configuration is the output's data, and `config all`'s text); `config KEY` one setting.
fn config_text(config: &Value, show: &[String]) -> Result<String, CommandError> {
    let mut flat = Vec::new();
    flatten("", config, &mut flat);
    if show.iter().any(|k| k == "all") {
        return Ok(serde_json::to_string_pretty(config).unwrap_or_default());
    }
    if !show.is_empty() {
        let mut lines = Vec::new();
        for key in show {
            let hits: Vec<&(String, Value)> = flat
                .iter()
                .filter(|(k, _)| k == key || k.starts_with(&format!("{key}.")))
                .collect();
            if hits.is_empty() {
                let names: Vec<&str> = flat.iter().map(|(k, _)| k.as_str()).collect();
                return Err(CommandError::Usage {
                    command: "config".into(),
                    message: format!("no setting `{key}`{}", crate::suggest::hint(key, names)),
                    usage: "config [key=value…] | config KEY | config all".into(),
                });
            }
            lines.extend(hits.iter().map(|(k, v)| format!("{k} = {v}")));
        }
        return Ok(lines.join("\n"));
    }
    let diffs = SearchConfig::PRESETS.iter().filter_map(|name| {
        let preset = serde_json::to_value(SearchConfig::preset(name).ok()?).ok()?;
        let mut base = Vec::new();
        flatten("", &preset, &mut base);
        let differ: Vec<String> = flat
            .iter()
            .filter_map(|(k, v)| {
                let was = base.iter().find(|(b, _)| b == k).map(|(_, b)| b);
                (was != Some(v)).then(|| match was {
                    Some(was) => format!("  {k} = {v}   (preset: {was})"),
                    None => format!("  {k} = {v}"),
                })
            })
            .collect();
        Some((name, differ))
    });
    let Some((name, differ)) = diffs.min_by_key(|(_, d)| d.len()) else {
        return Ok(serde_json::to_string_pretty(config).unwrap_or_default());
    };
    let head = if differ.is_empty() {
        format!("the {name} preset, unchanged")
    } else {
        format!(
            "the {name} preset, with {} setting(s) changed:\n{}",
            differ.len(),
            differ.join("\n")
        )
    };
    Ok(format!(
        "{head}\n(`config KEY` shows a setting, `config all` every one; `explain TOPIC` what they mean)"
    ))
}

/// Leaves of a JSON object by dotted name (`slurm.partition`), in order.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v.as_object() {
        Some(map) => {
            for (k, child) in map {
                flatten(&format!("{prefix}{k}."), child, out);
            }
        }
        None => out.push((prefix.trim_end_matches('.').to_owned(), v.clone())),
    }
}

pub(super) fn cmd_pretrain(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("pretrain", &sh.session()?.pretrain(args.count(0))?))
}

pub(super) fn cmd_sample(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("sample", &sh.sample(args.count(0).unwrap_or(8))?))
}

pub(super) fn cmd_preview(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let policy = args.policy(0).cloned().ok_or(CommandError::Missing {
        command: "preview",
        what: "a policy",
    })?;
    let report = sh.preview(&policy, args.count(1).unwrap_or(8))?;
    let c = crate::present::chart::images(&report)?;
    let text = format!("{policy} on {}\n(`plot images FILE` writes this grid)", c.text);
    Ok(Output {
        data: json!({"policy": policy.to_string(), "svg": c.svg, "width": c.width, "height": c.height}),
        rich: Html::Ready(chart_html(&c) + &pre(&text)),
        ..Output::text("preview", text)
    })
}

pub(super) fn cmd_evaluate(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("evaluate", &sh.evaluate(args.count(0))?))
}

pub(super) fn cmd_update(sh: &mut Shell, _: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("update", &sh.session()?.update()?))
}

pub(super) fn cmd_step(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("step", &sh.step(args.count(0).unwrap_or(1))?))
}

pub(super) fn cmd_policy(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report(
        "policy",
        &sh.session()?.policy(args.count(0).unwrap_or(10))?,
    ))
}

pub(super) fn cmd_probe(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let p = args.policy(0).cloned().unwrap_or(Policy::None);
    Ok(Output::report("probe", &sh.session()?.probe(&p, args.count(1))?))
}

/// The word that makes `compare` stop early.
pub(super) const EARLY: &str = "early";

pub(super) fn cmd_compare(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let policies = args.policies();
    let explicit = args.0.iter().position(|a| matches!(a, Arg::Text(t) if t == EARLY));
    // Two policies and no k: the size of the effect is unknown, which is when stopping early pays.
    let early = explicit.is_some() || (policies.len() == 2 && args.trailing_count().is_none());
    let r = if !early {
        sh.compare(&policies, args.trailing_count())?
    } else {
        let usage = |message: String| CommandError::Usage {
            command: "compare".into(),
            message,
            usage: "compare A B early [max pairs]".into(),
        };
        let [a, b] = policies.as_slice() else {
            return Err(usage(format!(
                "`early` compares exactly two policies (got {}): its test is one paired difference",
                policies.len()
            )));
        };
        // After `early` only the most pairs to run may follow: `early` is last, or `early N`.
        let after = explicit.map_or(0, |at| args.0.len() - at - 1);
        if after > 1 || (after == 1 && args.trailing_count().is_none()) {
            return Err(usage("`early` may be followed only by the most pairs to run".into()));
        }
        sh.compare_early(a, b, args.trailing_count())?
    };
    Ok(Output::report("compare", &r))
}

pub(super) fn cmd_null(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("null", &sh.session()?.null(args.count(0))?))
}

pub(super) fn cmd_fulltrain(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let p = args.policy(0).cloned().unwrap_or(Policy::None);
    Ok(Output::report(
        "fulltrain",
        &sh.session()?.fulltrain(&p, args.count(1))?,
    ))
}

pub(super) fn cmd_correlate(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("correlate", &sh.correlate(&args.policies())?))
}

pub(super) fn cmd_plot(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let Some(Arg::Chart(kind)) = args.0.first() else {
        return Err(CommandError::Missing {
            command: "plot",
            what: "a chart",
        });
    };
    let (kind, name) = (*kind, kind.name());
    let c = sh.chart(kind)?;
    let stem = match args.path(1) {
        Some(f) => {
            let p = f.to_path_buf();
            match p.extension().and_then(|e| e.to_str()) {
                Some("svg" | "png") => p.with_extension(""),
                _ => p,
            }
        }
        None => {
            let read_only = sh.session.as_ref().and_then(|s| s.read_only()).map(str::to_owned);
            if let Some(why) = read_only {
                // An archived run: the chart is shown, and written only where the user says.
                let where_ = format!(
                    "not written: {} is read-only ({why}); `plot {name} FILE` writes it elsewhere",
                    sh.run_dir.display()
                );
                return Ok(Output {
                    data: json!({"chart": name, "svg": c.svg, "width": c.width, "height": c.height}),
                    rich: Html::Ready(chart_html(&c) + &pre(&where_)),
                    ..Output::text("plot", format!("{}\n{where_}", c.text))
                });
            }
            sh.run_dir.join("plots").join(name)
        }
    };
    let (svg, png) = (stem.with_extension("svg"), stem.with_extension("png"));
    crate::checkpoint::write_atomic(&svg, c.svg.as_bytes()).map_err(SearchError::from)?;
    crate::checkpoint::write_atomic(&png, &c.png).map_err(SearchError::from)?;
    let text = format!(
        "{}
wrote {} and {}",
        c.text,
        svg.display(),
        png.display()
    );
    let html = Html::Ready(chart_html(&c) + &pre(&format!("wrote {} and {}", svg.display(), png.display())));
    Ok(Output {
        data: json!({"chart": name, "svg": c.svg, "svg_path": svg, "png_path": png, "width": c.width, "height": c.height}),
        rich: html,
        ..Output::text("plot", text)
    })
}

pub(super) fn cmd_history(sh: &mut Shell, _: &Args) -> Result<Output, CommandError> {
    let Some(s) = sh.session.as_ref() else {
        return Ok(Output::text("history", "nothing yet: no session has run"));
    };
    Ok(Output::report("history", &s.history))
}

pub(super) fn cmd_save(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let path = sh.session()?.save(args.path(0))?;
    sh.run_dir = path.clone();
    Ok(Output {
        data: json!({"dir": path}),
        ..Output::text("save", format!("checkpoint written to {}", path.display()))
    })
}

pub(super) fn cmd_resume(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let dir = args.path(0).map(Path::to_owned).unwrap_or_else(|| sh.run_dir.clone());
    let text = sh.resume(dir)?;
    Ok(Output::text("resume", text))
}

pub(super) fn cmd_reset(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let note = match args.path(0) {
        Some(dir) => {
            sh.drop_session();
            sh.run_dir = dir.to_owned();
            ""
        }
        None => restart_note(sh),
    };
    // Built now, so a directory that holds a run is refused here rather than at the next step.
    let dir = sh.session()?.run_dir.clone();
    Ok(Output::text(
        "reset",
        format!("new session with the current configuration in {}{note}", dir.display()),
    ))
}

pub(super) fn cmd_quit(_: &mut Shell, _: &Args) -> Result<Output, CommandError> {
    Ok(Output {
        quit: true,
        ..Output::text("quit", "bye")
    })
}
