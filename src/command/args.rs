//! Words to arguments: the line's tokeniser and each argument kind's parser, run against a
//! command's row before its handler sees anything.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::data::DataSpec;
use crate::model::Arch;
use crate::policy::Policy;
use crate::present::chart::ChartKind;
use crate::search::Topic;
use crate::suggest::Named;

use super::handlers::EARLY;
use super::{ArgKind, Command, CommandError, ExportFormat};

/// Split a line into words; `"…"` or `'…'` quote words with spaces.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!(
            "unclosed quote: a {} opens a word that never ends",
            quote.map_or('"', |q| q)
        ));
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// One argument as its handler receives it: parsed once, by the table.
#[derive(Debug, Clone)]
pub enum Arg {
    Count(usize),
    Policy(Policy),
    /// `best`: the session's searched θ, resolved when the line runs.
    Best,
    Topic(Topic),
    Path(PathBuf),
    Data(DataSpec),
    Model(Arch),
    KeyValue(String, String),
    Chart(ChartKind),
    Format(ExportFormat),
    Text(String),
}

/// A command's arguments, typed.
#[derive(Debug, Clone, Default)]
pub struct Args(pub Vec<Arg>);

impl Args {
    pub fn count(&self, i: usize) -> Option<usize> {
        match self.0.get(i) {
            Some(Arg::Count(n)) => Some(*n),
            _ => None,
        }
    }
    pub fn policy(&self, i: usize) -> Option<&Policy> {
        match self.0.get(i) {
            Some(Arg::Policy(p)) => Some(p),
            _ => None,
        }
    }
    /// Every policy argument, in order.
    pub fn policies(&self) -> Vec<Policy> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Arg::Policy(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }
    /// The last argument when it is a count (`compare A B C 8`).
    pub fn trailing_count(&self) -> Option<usize> {
        match self.0.last() {
            Some(Arg::Count(n)) => Some(*n),
            _ => None,
        }
    }
    pub fn path(&self, i: usize) -> Option<&Path> {
        match self.0.get(i) {
            Some(Arg::Path(p)) => Some(p),
            _ => None,
        }
    }
    pub fn text(&self, i: usize) -> Option<&str> {
        match self.0.get(i) {
            Some(Arg::Text(t)) => Some(t),
            _ => None,
        }
    }
    pub(super) fn find<T>(&self, f: impl Fn(&Arg) -> Option<T>) -> Option<T> {
        self.0.iter().find_map(f)
    }
}

impl ArgKind {
    /// `word` as this kind of argument; `last`: it is the line's last word.
    fn parse(self, word: &str, last: bool) -> Result<Arg, String> {
        let named = |e: String| e;
        Ok(match self {
            ArgKind::Count(limit) => {
                let n = word.parse::<u64>().map_err(|_| "expected a whole number".to_owned())?;
                Arg::Count(limit.check(n)? as usize)
            }
            ArgKind::Policy | ArgKind::PolicyOrCount if word == "best" => Arg::Best,
            ArgKind::Policy => Arg::Policy(Policy::from_str(word).map_err(|e| e.to_string())?),
            ArgKind::Topic => Arg::Topic(Topic::parse_named(word).map_err(named)?),
            ArgKind::Data => Arg::Data(DataSpec::from_str(word).map_err(|e| e.to_string())?),
            ArgKind::Model => Arg::Model(Arch::from_str(word).map_err(|e| e.to_string())?),
            // A key alone shows that setting (`config slurm`, `config all`).
            ArgKind::KeyValue => match word.split_once('=') {
                Some((k, v)) => Arg::KeyValue(k.to_owned(), v.to_owned()),
                None => Arg::Text(word.to_owned()),
            },
            ArgKind::Chart => Arg::Chart(ChartKind::parse_named(word).map_err(named)?),
            // `export [format] [policy] [file]`, each optional: a word that is no format is the
            // policy if it parses as one, else a file if it looks like one (`best.json`).
            ArgKind::Format => match ExportFormat::parse_named(word) {
                Ok(f) => Arg::Format(f),
                Err(_) if word == "best" => Arg::Best,
                Err(e) => match Policy::from_str(word) {
                    Ok(p) => Arg::Policy(p),
                    Err(_) if word.contains(['.', '/']) => Arg::Path(PathBuf::from(word)),
                    Err(_) => return Err(format!("{e}, a policy (`help policies`) or a file name")),
                },
            },
            // `compare A B early [max]`: stop as soon as the evidence suffices.
            ArgKind::PolicyOrCount if word == EARLY => Arg::Text(EARLY.to_owned()),
            ArgKind::PolicyOrCount => match word.parse::<u64>() {
                Ok(k) if last => Arg::Count(crate::limits::TRAJECTORIES.check(k)? as usize),
                _ => Arg::Policy(Policy::from_str(word).map_err(|e| {
                    if last {
                        format!("{e} (or a trajectory count)")
                    } else {
                        e.to_string()
                    }
                })?),
            },
            ArgKind::Path => Arg::Path(PathBuf::from(word)),
            ArgKind::Text => Arg::Text(word.to_owned()),
        })
    }
}

/// Check `words` against `cmd`'s arguments and parse each once.
pub(super) fn parse(cmd: &Command, words: &[String]) -> Result<Args, CommandError> {
    let usage = |message: String| CommandError::Usage {
        command: cmd.name.into(),
        message,
        usage: cmd.usage(),
    };
    let required = cmd.args.iter().filter(|a| !a.optional).count();
    let unbounded = cmd.args.iter().any(|a| a.repeated);
    if words.len() < required {
        let missing = &cmd.args[words.len()];
        return Err(usage(format!("missing <{}>", missing.name)));
    }
    if !unbounded && words.len() > cmd.args.len() {
        return Err(usage(format!("unexpected `{}`", words[cmd.args.len()])));
    }
    let mut args = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let spec = cmd
            .args
            .get(i)
            .or(cmd.args.last())
            .copied()
            .ok_or_else(|| usage(format!("unexpected `{word}`")))?;
        let arg = spec
            .kind
            .parse(word, i + 1 == words.len())
            .map_err(|why| usage(format!("<{}> `{word}`: {why}", spec.name)))?;
        args.push(arg);
    }
    Ok(Args(args))
}
