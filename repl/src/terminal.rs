//! The terminal front-ends of the command table: an interactive rustyline REPL and a runner
//! for scripts and piped stdin. They parse nothing themselves and compute nothing: every line
//! goes to `augwise::command::Shell::run`, every result is rendered from its `Output`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use augwise::command::{completions, usage_hint, Output, Shell};
use augwise::present::progress::{JsonLines, ProgressRenderer, TextLines};
use augwise::search::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

/// A terminal's progress renderer: one bar with ETA per primitive, cleared before the prompt.
#[derive(Clone, Default)]
pub struct TerminalBar {
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl TerminalBar {
    /// Clear the bar (before printing a result or the prompt).
    pub fn clear(&self) {
        if let Ok(mut g) = self.bar.lock() {
            if let Some(b) = g.take() {
                b.finish_and_clear();
            }
        }
    }
}

impl ProgressRenderer for TerminalBar {
    fn render(&mut self, p: &Progress) {
        let Ok(mut guard) = self.bar.lock() else { return };
        if let Progress::Notice { .. } = p {
            // Above the bar, which keeps its place; plain stderr when no bar is up.
            let text = augwise::present::progress::line(p);
            match guard.as_ref() {
                Some(b) => b.println(text),
                None => eprintln!("{text}"),
            }
            return;
        }
        let b = guard.get_or_insert_with(|| {
            let b = ProgressBar::new(1000);
            if let Ok(style) = ProgressStyle::with_template("{prefix:>9} [{bar:30}] {percent:>3}% eta {eta:>4}  {msg}")
            {
                b.set_style(style.progress_chars("=> "));
            }
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        b.set_prefix(p.stage());
        b.set_position((p.fraction() * 1000.0) as u64);
        b.set_message(p.to_string());
    }
}

/// Progress of long steps: a bar on a terminal, JSON lines on stderr with `--json`, a line
/// every few seconds otherwise. Returns the bar to clear (a no-op off a terminal).
pub fn attach_progress(shell: &mut Shell, json: bool) -> TerminalBar {
    let bar = TerminalBar::default();
    if json {
        let mut r = JsonLines::new(std::io::stderr());
        shell.set_progress(move |p| r.render(p));
    } else if std::io::stderr().is_terminal() {
        let mut r = bar.clone();
        shell.set_progress(move |p| r.render(p));
    } else {
        let mut r = TextLines::every(Duration::from_secs(5));
        shell.set_progress(move |p| r.render(p));
    }
    bar
}

fn render(out: &Output, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "command": out.command, "text": out.text, "data": out.data})
        );
    } else if !out.text.is_empty() {
        println!("{}", out.text);
    }
}

fn render_error(line: &str, e: &dyn std::fmt::Display, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": false, "line": line, "error": e.to_string()})
        );
    } else {
        eprintln!("error: {e}");
    }
}

/// Render one command's result; true when the front-end should end.
pub fn show(line: &str, result: Result<Output, augwise::command::CommandError>, json: bool) -> Result<bool, ()> {
    match result {
        Ok(out) => {
            render(&out, json);
            Ok(out.quit)
        }
        Err(e) => {
            render_error(line, &e, json);
            Err(())
        }
    }
}

/// Lines of a byte stream, each valid UTF-8 or an error naming the line: a stray byte in piped
/// input is reported, not taken for the end of the input.
pub fn utf8_lines(input: impl std::io::BufRead) -> impl Iterator<Item = Result<String, String>> {
    input.split(b'\n').enumerate().map(|(i, line)| match line {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            format!(
                "input line {} is not valid UTF-8 (augwise reads UTF-8 text); it was not run",
                i + 1
            )
        }),
        Err(e) => Err(format!("could not read input line {}: {e}", i + 1)),
    })
}

/// Run lines in order (a script or piped stdin). Stops at the first error with exit code 1
/// unless `keep_going`; blank lines and `#` comments are skipped; a line that could not be
/// read is an error like a failed command.
pub fn run_lines(
    shell: &mut Shell,
    lines: impl Iterator<Item = Result<String, String>>,
    json: bool,
    keep_going: bool,
) -> i32 {
    let bar = attach_progress(shell, json);
    let mut code = 0;
    for line in lines {
        let line = match line {
            Ok(line) => line,
            Err(why) => {
                render_error("", &why, json);
                code = 1;
                if keep_going {
                    continue;
                }
                break;
            }
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !json {
            println!("augwise> {line}");
        }
        let result = shell.run(line);
        bar.clear();
        match show(line, result, json) {
            Ok(true) => break,
            Ok(false) => {}
            Err(()) => {
                code = 1;
                if !keep_going {
                    break;
                }
            }
        }
    }
    code
}

struct ReplHelper {
    files: FilenameCompleter,
    history: HistoryHinter,
}

impl Completer for ReplHelper {
    type Candidate = Pair;
    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        match completions(line, pos) {
            Some((start, words)) => Ok((
                start,
                words
                    .into_iter()
                    .map(|w| Pair {
                        display: w.clone(),
                        replacement: w,
                    })
                    .collect(),
            )),
            None => self.files.complete(line, pos, ctx),
        }
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        if let Some(h) = self.history.hint(line, pos, ctx) {
            return Some(h);
        }
        usage_hint(line).map(|u| format!("  {u}"))
    }
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {
    /// A trailing `\` or an open quote continues on the next line (long policy lists).
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        let open_quote = augwise::command::split(&input.replace("\\\n", " ")).is_err();
        Ok(if input.ends_with('\\') || open_quote {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Helper for ReplHelper {}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("AUGWISE_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".augwise_history")))
}

/// The interactive REPL. Ctrl-C during a step cancels it (the session is as before the step);
/// Ctrl-C at the prompt clears the line; Ctrl-D or `quit` leaves.
pub fn interactive(shell: &mut Shell) -> anyhow::Result<()> {
    let flag = shell.cancel_flag();
    // While a step runs the terminal is in cooked mode and Ctrl-C is SIGINT.
    let _ = ctrlc::set_handler(move || flag.cancel());
    let bar = attach_progress(shell, false);
    let mut rl: Editor<ReplHelper, rustyline::history::DefaultHistory> = Editor::new()?;
    rl.set_helper(Some(ReplHelper {
        files: FilenameCompleter::new(),
        history: HistoryHinter::new(),
    }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!(
        "augwise {} — AWS auto-augment search. `help` lists the commands, Tab completes, Ctrl-D leaves.",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        let prompt = format!("augwise [{}]> ", shell.status());
        match rl.readline(&prompt) {
            Ok(input) => {
                let line = input.replace("\\\n", " ");
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(line);
                if let Some(h) = &history {
                    let _ = rl.save_history(h);
                }
                let result = shell.run(line);
                bar.clear();
                if show(line, result, false) == Ok(true) {
                    break;
                }
                let _ = std::io::stdout().flush();
            }
            Err(ReadlineError::Interrupted) => println!("^C (Ctrl-D or `quit` leaves; every step is checkpointed)"),
            Err(ReadlineError::Eof) => {
                println!("bye");
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
