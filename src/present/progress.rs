//! Renderers of [`Progress`] events, one per place a search runs (burn's `renderer` idea): a
//! bar on a terminal (the REPL's, `repl/src/terminal.rs`), spaced lines in logs and notebooks,
//! JSON lines for programs. The events are data; each renderer decides what to show when.
//!
//! Notebooks: evcxr 0.22 forwards a cell's stdout to Jupyter line by line (its child
//! process's stdout is read with `BufRead::lines`, and each line is sent as a stream message
//! ending in `\n`), so a line cannot be rewritten in place from inside a cell — `\r` never
//! reaches the front-end before the newline that ends the line. [`NotebookLines`] therefore
//! prints a line when a primitive starts and one when it ends, with one every 30 s between.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::search::Progress;

/// Something that shows progress events as they come.
pub trait ProgressRenderer: Send {
    fn render(&mut self, p: &Progress);
}

impl<F: FnMut(&Progress) + Send> ProgressRenderer for F {
    fn render(&mut self, p: &Progress) {
        self(p)
    }
}

/// `[stage  12.3%] message` — the line every text renderer prints.
pub fn line(p: &Progress) -> String {
    match p {
        // A notice is not a step of anything: no fraction.
        Progress::Notice { .. } => format!("[{}] {p}", p.stage()),
        _ => format!("[{} {:5.1}%] {p}", p.stage(), 100.0 * p.fraction()),
    }
}

/// Tells when a new primitive starts: another stage, or the fraction going back.
#[derive(Debug, Default)]
struct Run {
    stage: Option<&'static str>,
    fraction: f64,
    started: Option<Instant>,
}

impl Run {
    /// Whether `p` starts a new run; records it either way.
    fn advance(&mut self, p: &Progress) -> bool {
        let f = p.fraction();
        let new = self.stage != Some(p.stage()) || f < self.fraction;
        if new {
            self.stage = Some(p.stage());
            self.started = Some(Instant::now());
        }
        self.fraction = f;
        new
    }

    fn elapsed(&self) -> Duration {
        self.started.map_or(Duration::ZERO, |s| s.elapsed())
    }
}

/// Notebook cells: a line when a primitive starts, then at most one every `gap` (with the
/// time left), and one when it ends — two lines for a short primitive, never one per batch.
#[derive(Debug)]
pub struct NotebookLines {
    gap: Duration,
    run: Run,
    last: Option<Instant>,
}

impl Default for NotebookLines {
    fn default() -> Self {
        Self::every(Duration::from_secs(30))
    }
}

impl NotebookLines {
    pub fn every(gap: Duration) -> Self {
        Self {
            gap,
            run: Run::default(),
            last: None,
        }
    }

    /// The line for `p`, if it is due.
    pub fn due(&mut self, p: &Progress) -> Option<String> {
        if let Progress::Notice { .. } = p {
            // Always shown, and the run it interrupts goes on.
            return Some(line(p));
        }
        if self.run.advance(p) {
            self.last = Some(Instant::now());
            return Some(line(p));
        }
        let f = p.fraction();
        let done = f >= 1.0;
        if !done && self.last.is_some_and(|t| t.elapsed() < self.gap) {
            return None;
        }
        self.last = Some(Instant::now());
        let elapsed = self.run.elapsed().as_secs_f64();
        let timing = if done {
            format!("done in {elapsed:.0} s")
        } else {
            format!("{elapsed:.0} s, ~{:.0} s left", elapsed * (1.0 - f) / f.max(1e-9))
        };
        Some(format!("{} ({timing})", line(p)))
    }
}

impl ProgressRenderer for NotebookLines {
    fn render(&mut self, p: &Progress) {
        if let Some(l) = self.due(p) {
            println!("{l}");
        }
    }
}

/// Logs and pipes (no terminal): the notebook's spacing — a primitive's start and end, one
/// line every `every` between — indented, on stderr.
#[derive(Debug)]
pub struct TextLines(NotebookLines);

impl TextLines {
    pub fn every(every: Duration) -> Self {
        Self(NotebookLines::every(every))
    }

    /// The line for `p`, if it is due.
    pub fn due(&mut self, p: &Progress) -> Option<String> {
        self.0.due(p).map(|l| format!("  {l}"))
    }
}

impl ProgressRenderer for TextLines {
    fn render(&mut self, p: &Progress) {
        if let Some(l) = self.due(p) {
            eprintln!("{l}");
        }
    }
}

/// One JSON object per event — `{"progress": {"event": …, "stage": …, "fraction": …, …}}` —
/// for programs driving augwise (`augwise --json`), written to `out`.
pub struct JsonLines<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

/// The JSON form of an event: its fields plus the stage name and the fraction done.
pub fn json(p: &Progress) -> serde_json::Value {
    let mut v = serde_json::to_value(p).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("stage".into(), p.stage().into());
        o.insert("fraction".into(), p.fraction().into());
    }
    serde_json::json!({ "progress": v })
}

impl<W: Write + Send> ProgressRenderer for JsonLines<W> {
    fn render(&mut self, p: &Progress) {
        // A closed pipe loses progress lines, not the run.
        let _ = writeln!(self.out, "{}", json(p));
        let _ = self.out.flush();
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use crate::search::progress::{BatchAt, Purpose};

    fn probe(trajectory: usize, batch: usize) -> Progress {
        Progress::Trajectories {
            purpose: Purpose::Probe,
            first: trajectory,
            together: 1,
            total: 4,
            at: BatchAt {
                epoch: 1,
                epochs: 1,
                batch,
                batches: 100,
                loss: 1.5,
            },
        }
    }

    fn probe_run(r: &mut NotebookLines) -> Vec<String> {
        (0..4)
            .flat_map(|t| (1..=100).map(move |b| probe(t, b)))
            .filter_map(|p| r.due(&p))
            .collect()
    }

    /// A probe of 4 × 100 batches, then a second one: its start and its end, not 400 lines.
    #[test]
    fn a_notebook_gets_a_primitives_start_and_end_not_its_batches() {
        let mut r = NotebookLines::default();
        for _ in 0..2 {
            let lines = probe_run(&mut r);
            assert_eq!(lines.len(), 2, "{lines:#?}");
            assert!(lines[0].starts_with("[probe   0.2%] trajectory 1/4"), "{}", lines[0]);
            assert!(lines[1].starts_with("[probe 100.0%] trajectory 4/4"), "{}", lines[1]);
            assert!(lines[1].contains("done in"), "{}", lines[1]);
        }
        // With no gap, every event after the first says how long is left.
        let lines = probe_run(&mut NotebookLines::every(Duration::ZERO));
        assert_eq!(lines.len(), 400);
        assert!(lines[1].contains("s left"), "{}", lines[1]);
    }

    #[test]
    fn text_lines_are_spaced_but_every_new_primitive_is_shown() {
        let mut r = TextLines::every(Duration::from_secs(3600));
        assert!(r.due(&probe(0, 1)).is_some());
        assert!(r.due(&probe(0, 2)).is_none());
        let null = Progress::Null {
            done: 1,
            replicates: 10,
        };
        assert!(r.due(&null).is_some(), "another stage starts");
        assert!(r.due(&probe(0, 1)).is_some(), "and back");
        // A notice is always shown, and does not count as a new primitive.
        let notice = Progress::Notice {
            stage: "slurm",
            message: "refusing a result".into(),
        };
        assert_eq!(r.due(&notice).as_deref(), Some("  [slurm] note: refusing a result"));
        assert!(r.due(&probe(0, 2)).is_none(), "the probe's run goes on");
    }

    #[test]
    fn json_lines_carry_the_event_the_stage_and_the_fraction() {
        let mut buf = Vec::new();
        JsonLines::new(&mut buf).render(&probe(1, 50));
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["progress"]["event"], "trajectories");
        assert_eq!(v["progress"]["stage"], "probe");
        assert_eq!(v["progress"]["fraction"], 0.375);
        assert_eq!(v["progress"]["at"]["loss"], 1.5);
    }
}
