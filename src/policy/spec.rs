//! Policy spec strings: one compact grammar for every policy, parsed ↔ printed.
//!
//! ```text
//! none
//! autoaugment[:cifar10|svhn|imagenet]         torchvision's tables (default cifar10)
//! randaugment[:n=2,m=9,bins=31]               torchvision's defaults
//! trivialaugment[:bins=31]                    TrivialAugmentWide
//! aws[:uniform]                               the AWS space at θ = 0
//! pair:OP1+OP2                                one AWS pair, e.g. pair:Rotate:20+Invert
//! theta:PATH                                  a θ file: {"a":[36],"b":[[36]…]} logits,
//!                                             {"probs":[1296]}, or an augwise export
//! subpolicies:(OP,P[,BIN])(OP,P[,BIN]);(…)    AutoAugment-style sub-policies; BIN on the
//!                                             10-level grid, e.g.
//!                                             subpolicies:(Rotate,0.7,2)(TranslateX,0.3,9);(Invert,0.1)
//! ```
//! Errors name the column and list the valid forms.
//!
//! ```
//! use augwise::policy::Policy;
//! let p: Policy = "pair:Rotate:20+Invert".parse().unwrap();
//! assert_eq!(p.to_string(), "pair:Rotate:20+Invert");
//! let e = "subpolicies:(Rotat,0.7,2)".parse::<Policy>().unwrap_err().to_string();
//! assert!(e.contains("column 14") && e.contains("did you mean `Rotate`"));
//! ```

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::{AutoAugmentTable, PairDistribution, Policy, PolicyError, SubOp, Theta};
use crate::augment::space::{aws_index, aws_name, pair_ops, NUM_OPS};
use crate::augment::OpKind;
use crate::suggest;

/// `help policies`: every spec form with an example, then the AWS space's 36 operations.
pub fn help_text() -> String {
    let forms = [
        ("none", "only crop, flip and Cutout"),
        (
            "autoaugment[:cifar10|svhn|imagenet]",
            "torchvision's AutoAugment tables (default cifar10)",
        ),
        ("randaugment[:n=2,m=9,bins=31]", "RandAugment, torchvision's defaults"),
        ("trivialaugment[:bins=31]", "TrivialAugmentWide"),
        (
            "aws[:uniform]",
            "the AWS space at θ = 0: all 1,296 pairs equally likely",
        ),
        (
            "pair:OP1+OP2",
            "one AWS pair, both ops always applied: pair:Rotate:20+Invert",
        ),
        (
            "theta:PATH",
            "a θ file: logits {\"a\":[36],\"b\":[[36]…]}, {\"probs\":[1296]}, or `export theta`",
        ),
        (
            "subpolicies:(OP,P[,BIN])…[;…]",
            "your sub-policies, BIN on the 10-level grid: subpolicies:(Rotate,0.7,2)(TranslateX,0.3,9);(Invert,0.1)",
        ),
        (
            "best",
            "in a session: the search's best θ so far (what `export` writes)",
        ),
    ];
    let width = forms.iter().map(|f| f.0.chars().count()).max().unwrap_or(0);
    let mut text =
        String::from("policy specs (for probe, compare, preview, fulltrain, correlate, --policy, export):\n");
    for (form, what) in forms {
        text.push_str(&format!("  {form:<width$}  {what}\n"));
    }
    text.push_str("\nthe 36 AWS operations (OP in pair: and subpolicies:; a pair applies op1 then op2):\n");
    let names: Vec<String> = (0..NUM_OPS).map(aws_name).collect();
    for row in names.chunks(6) {
        text.push_str(&format!(
            "  {}\n",
            row.iter().map(|n| format!("{n:<18}")).collect::<String>().trim_end()
        ));
    }
    text.push_str(
        "a spec with spaces or `;` needs quotes at the prompt: probe \"subpolicies:(Rotate,0.7,2);(Invert,0.1)\"",
    );
    text
}

/// The forms, for error messages and help.
pub const GRAMMAR_SHORT: &str = "none, autoaugment[:cifar10|svhn|imagenet], randaugment[:n=N,m=M,bins=B], \
    trivialaugment[:bins=B], aws[:uniform], pair:OP1+OP2, theta:PATH, subpolicies:(OP,P[,BIN])…[;…]";

/// Policy names, for completion.
pub const NAMES: [&str; 8] = [
    "none",
    "autoaugment",
    "randaugment",
    "trivialaugment",
    "aws",
    "pair",
    "theta",
    "subpolicies",
];

struct Parser<'a> {
    spec: &'a str,
}

impl<'a> Parser<'a> {
    /// An error at byte offset `at` (columns count characters, from 1).
    fn err(&self, at: usize, message: impl Into<String>) -> PolicyError {
        let column = self.spec[..at.min(self.spec.len())].chars().count() + 1;
        PolicyError::Parse {
            spec: self.spec.to_owned(),
            column,
            message: message.into(),
        }
    }

    fn parse(&self) -> Result<Policy, PolicyError> {
        let lead = self.spec.len() - self.spec.trim_start().len();
        let s = self.spec.trim();
        let (name, args, args_at) = match s.find(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..]), lead + i + 1),
            None => (s, None, lead + s.len()),
        };
        let lname = name.trim().to_ascii_lowercase();
        match lname.as_str() {
            "none" | "identity" => self.no_args(args, args_at, Policy::None),
            "autoaugment" | "aa" => match args.map(str::trim) {
                None | Some("") => Ok(Policy::AutoAugment {
                    table: AutoAugmentTable::Cifar10,
                }),
                Some(t) => AutoAugmentTable::ALL
                    .iter()
                    .find(|x| x.name().eq_ignore_ascii_case(t))
                    .map(|&table| Policy::AutoAugment { table })
                    .ok_or_else(|| {
                        let names = AutoAugmentTable::ALL.map(AutoAugmentTable::name);
                        self.err(
                            args_at,
                            format!(
                                "unknown AutoAugment table `{t}`{}; expected cifar10, svhn or imagenet",
                                suggest::hint(t, names)
                            ),
                        )
                    }),
            },
            "randaugment" | "ra" => {
                let (mut n, mut m, mut bins) = (2usize, 9usize, 31usize);
                for (k, v, at) in self.key_values(args.unwrap_or(""), args_at)? {
                    match k {
                        "n" => n = v,
                        "m" => m = v,
                        "bins" => bins = v,
                        _ => return Err(self.err(at, format!("unknown randaugment option `{k}`; expected n, m, bins"))),
                    }
                }
                let p = Policy::RandAugment { n, m, bins };
                p.validate().map_err(|e| self.err(args_at, e.to_string()))?;
                Ok(p)
            }
            "trivialaugment" | "ta" | "trivialaugmentwide" => {
                let mut bins = 31usize;
                for (k, v, at) in self.key_values(args.unwrap_or(""), args_at)? {
                    match k {
                        "bins" => bins = v,
                        _ => return Err(self.err(at, format!("unknown trivialaugment option `{k}`; expected bins"))),
                    }
                }
                let p = Policy::TrivialAugment { bins };
                p.validate().map_err(|e| self.err(args_at, e.to_string()))?;
                Ok(p)
            }
            "aws" => match args.map(str::trim) {
                None | Some("") | Some("uniform") => Ok(Policy::AwsUniform),
                Some(other) => Err(self.err(
                    args_at,
                    format!("unknown aws form `{other}`; use aws:uniform, pair:OP1+OP2 or theta:PATH"),
                )),
            },
            "pair" => {
                let a = args.filter(|a| !a.trim().is_empty()).ok_or_else(|| {
                    self.err(
                        args_at,
                        "pair needs two AWS ops: pair:OP1+OP2, e.g. pair:Rotate:20+Invert",
                    )
                })?;
                let split = a
                    .find(['+', ','])
                    .ok_or_else(|| self.err(args_at + a.len(), "pair needs two AWS ops separated by `+`"))?;
                let op1 = aws_index(&a[..split]).map_err(|e| self.err(args_at, e.to_string()))?;
                let op2 = aws_index(&a[split + 1..]).map_err(|e| self.err(args_at + split + 1, e.to_string()))?;
                Ok(Policy::AwsPair { op1, op2 })
            }
            "theta" => {
                let path = args
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| self.err(args_at, "theta needs a file: theta:PATH"))?;
                load_theta(Path::new(path)).map_err(|e| self.err(args_at, e.to_string()))
            }
            "subpolicies" | "sub" => self.sub_policies(args.unwrap_or(""), args_at),
            other => Err(self.err(lead, format!("unknown policy `{other}`{}", suggest::hint(other, NAMES)))),
        }
    }

    fn no_args(&self, args: Option<&str>, at: usize, p: Policy) -> Result<Policy, PolicyError> {
        match args.map(str::trim) {
            None | Some("") => Ok(p),
            Some(a) => Err(self.err(at, format!("`{}` takes no options, found `{a}`", p))),
        }
    }

    /// `k=v,k=v` with non-negative integer values; returns (key, value, offset).
    fn key_values(&self, s: &'a str, at: usize) -> Result<Vec<(&'a str, usize, usize)>, PolicyError> {
        let mut out = Vec::new();
        let mut offset = at;
        for part in s.split(',') {
            let here = offset + (part.len() - part.trim_start().len());
            offset += part.len() + 1;
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| self.err(here, format!("`{part}` is not key=value")))?;
            let v: usize = v.trim().parse().map_err(|_| {
                self.err(
                    here + k.len() + 1,
                    format!("`{}` is not a non-negative integer", v.trim()),
                )
            })?;
            out.push((k.trim(), v, here));
        }
        Ok(out)
    }

    fn sub_policies(&self, s: &str, at: usize) -> Result<Policy, PolicyError> {
        let mut subs = Vec::new();
        let mut offset = at;
        for group in s.split(';') {
            let group_at = offset;
            offset += group.len() + 1;
            let mut ops = Vec::new();
            let mut rest = group;
            let mut pos = group_at;
            loop {
                let trimmed = rest.trim_start();
                pos += rest.len() - trimmed.len();
                rest = trimmed;
                if rest.is_empty() {
                    break;
                }
                if !rest.starts_with('(') {
                    return Err(self.err(
                        pos,
                        format!(
                            "expected `(OP,P[,BIN])`, found `{}`",
                            rest.chars().next().unwrap_or(' ')
                        ),
                    ));
                }
                let close = rest.find(')').ok_or_else(|| self.err(pos, "unclosed `(`"))?;
                let inner = &rest[1..close];
                ops.push(self.sub_op(inner, pos + 1)?);
                pos += close + 1;
                rest = &rest[close + 1..];
            }
            if ops.is_empty() {
                return Err(self.err(group_at, "empty sub-policy: each needs at least one (OP,P[,BIN])"));
            }
            subs.push(ops);
        }
        let p = Policy::SubPolicies { sub_policies: subs };
        p.validate().map_err(|e| self.err(at, e.to_string()))?;
        Ok(p)
    }

    fn sub_op(&self, inner: &str, at: usize) -> Result<SubOp, PolicyError> {
        let fields: Vec<&str> = inner.split(',').collect();
        let mut starts = Vec::with_capacity(fields.len());
        let mut o = at;
        for f in &fields {
            starts.push(o + (f.len() - f.trim_start().len()));
            o += f.len() + 1;
        }
        let op: OpKind = fields[0]
            .trim()
            .parse()
            .map_err(|e: crate::augment::AugmentError| self.err(starts[0], e.to_string()))?;
        let prob: f64 = fields
            .get(1)
            .ok_or_else(|| {
                self.err(
                    at + inner.len(),
                    format!("({}) needs a probability: ({},P[,BIN])", op, op),
                )
            })?
            .trim()
            .parse()
            .map_err(|_| self.err(starts[1], "probability must be a number in 0..=1"))?;
        if !(0.0..=1.0).contains(&prob) {
            return Err(self.err(starts[1], format!("probability {prob} is outside 0..=1")));
        }
        let bin = match fields.get(2) {
            Some(b) => Some(b.trim().parse::<usize>().ok().filter(|b| *b <= 9).ok_or_else(|| {
                self.err(
                    starts[2],
                    format!("magnitude bin `{}` is not an integer 0..=9", b.trim()),
                )
            })?),
            None => None,
        };
        if fields.len() > 3 {
            return Err(self.err(starts[3], "too many fields: (OP,P[,BIN])"));
        }
        match (op.range(), bin) {
            (Some(_), None) => Err(self.err(
                at + inner.len(),
                format!("{op} needs a magnitude bin: ({op},{prob},BIN) with BIN in 0..=9"),
            )),
            (None, Some(_)) => Err(self.err(starts[2], format!("{op} takes no magnitude bin"))),
            _ => Ok(SubOp { op, prob, bin }),
        }
    }
}

/// Load a θ file (logits, probabilities or an augwise export).
pub fn load_theta(path: &Path) -> Result<Policy, PolicyError> {
    let file = |why: String| PolicyError::File {
        path: path.to_owned(),
        why,
    };
    let text = crate::limits::read_text(path, crate::limits::THETA_FILE_BYTES)
        .map_err(|e| file(format!("cannot read θ file: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| file(format!("not JSON (truncated?): {e}")))?;
    let probs = if v.get("a").is_some() && v.get("b").is_some() {
        let t: Theta = serde_json::from_value(v).map_err(|e| file(format!("θ logits: {e}")))?;
        t.distribution()?
    } else {
        let p = v.get("probs").cloned().unwrap_or(v);
        let probs: Vec<f64> = serde_json::from_value(p).map_err(|_| {
            file("expected {\"a\",\"b\"} logits, {\"probs\": [1296 numbers]} or a list of 1296 numbers".into())
        })?;
        PairDistribution::new(probs)?
    };
    Ok(Policy::AwsTheta {
        probs,
        source: Some(path.to_owned()),
    })
}

impl FromStr for Policy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Parser { spec: s }.parse()
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::None => f.write_str("none"),
            Policy::AutoAugment { table } => write!(f, "autoaugment:{}", table.name()),
            Policy::RandAugment { n, m, bins } => write!(f, "randaugment:n={n},m={m},bins={bins}"),
            Policy::TrivialAugment { bins } => write!(f, "trivialaugment:bins={bins}"),
            Policy::AwsUniform => f.write_str("aws:uniform"),
            Policy::AwsPair { op1, op2 } => write!(f, "pair:{}+{}", aws_name(*op1), aws_name(*op2)),
            Policy::AwsTheta { source: Some(p), .. } => write!(f, "theta:{}", p.display()),
            Policy::AwsTheta { probs, source: None } => {
                let (a, b) = pair_ops(probs.top(1).first().map_or(0, |t| t.0));
                write!(f, "theta:<in memory, top pair {}+{}>", aws_name(a), aws_name(b))
            }
            Policy::SubPolicies { sub_policies } => {
                f.write_str("subpolicies:")?;
                for (i, sub) in sub_policies.iter().enumerate() {
                    if i > 0 {
                        f.write_str(";")?;
                    }
                    for s in sub {
                        match s.bin {
                            Some(b) => write!(f, "({},{},{b})", s.op, s.prob)?,
                            None => write!(f, "({},{})", s.op, s.prob)?,
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

const _: () = assert!(NUM_OPS == 36);

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn every_form_round_trips() {
        for s in [
            "none",
            "autoaugment:cifar10",
            "autoaugment:svhn",
            "autoaugment:imagenet",
            "randaugment:n=2,m=9,bins=31",
            "trivialaugment:bins=31",
            "aws:uniform",
            "pair:Rotate:20+Invert",
            "pair:Solarize:85.3333+TranslateY:0.4532",
            "subpolicies:(Rotate,0.7,2)(TranslateX,0.3,9);(Invert,0.1)(Contrast,0.2,6)",
        ] {
            let p: Policy = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(p.to_string(), s);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p, "{json}");
        }
        assert_eq!(
            "autoaugment".parse::<Policy>().unwrap().to_string(),
            "autoaugment:cifar10"
        );
        assert_eq!(
            " RandAugment:m=5 ".parse::<Policy>().unwrap().to_string(),
            "randaugment:n=2,m=5,bins=31"
        );
        assert_eq!(
            "pair:rotate:20.0,invert".parse::<Policy>().unwrap().to_string(),
            "pair:Rotate:20+Invert"
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        let col = |s: &str| match s.parse::<Policy>() {
            Err(PolicyError::Parse { column, message, .. }) => (column, message),
            other => panic!("{s}: expected a parse error, got {other:?}"),
        };
        assert_eq!(col("autoaugmnt").0, 1);
        assert!(col("autoaugmnt").1.contains("did you mean `autoaugment`"));
        assert_eq!(col("autoaugment:cifar11").0, 13);
        assert_eq!(col("randaugment:n=2,q=3").0, 17);
        assert_eq!(col("randaugment:n=x").0, 15);
        assert_eq!(col("pair:Rotate:20+Invrt").0, 16);
        assert!(col("pair:Rotate:20+Invrt").1.contains("did you mean `Invert`"));
        assert_eq!(col("subpolicies:(Rotate,0.7,2)(Invrt,0.1)").0, 28);
        assert_eq!(col("subpolicies:(Rotate,1.7,2)").0, 21);
        assert!(col("subpolicies:(Rotate,0.7)").1.contains("needs a magnitude bin"));
        assert!(col("subpolicies:(Rotate,0.7,12)").1.contains("0..=9"));
        assert!(col("subpolicies:(Invert,0.5);").1.contains("empty sub-policy"));
        assert!(col("subpolicies:").1.contains("empty sub-policy"));
        assert!(col("theta:/no/such/file.json").1.contains("cannot read"));
        let full = "subpolicies:(Rotat,0.7,2)".parse::<Policy>().unwrap_err().to_string();
        assert!(
            full.contains("\n  subpolicies:(Rotat,0.7,2)\n               ^"),
            "{full}"
        );
        assert!(full.contains("valid policies: none, autoaugment"), "{full}");
    }

    #[test]
    fn theta_files_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Theta::uniform();
        t.a[3] = 2.0;
        let logits = dir.path().join("logits.json");
        std::fs::write(&logits, serde_json::to_string(&t).unwrap()).unwrap();
        let p: Policy = format!("theta:{}", logits.display()).parse().unwrap();
        assert_eq!(p.to_string(), format!("theta:{}", logits.display()));
        assert_eq!(p.distribution().unwrap(), t.distribution().unwrap());
        let probs = dir.path().join("probs.json");
        std::fs::write(
            &probs,
            serde_json::json!({"probs": t.distribution().unwrap()}).to_string(),
        )
        .unwrap();
        assert_eq!(
            format!("theta:{}", probs.display())
                .parse::<Policy>()
                .unwrap()
                .distribution(),
            p.distribution()
        );
        let trunc = dir.path().join("trunc.json");
        std::fs::write(&trunc, "{\"a\": [0.0, 1").unwrap();
        assert!(format!("theta:{}", trunc.display())
            .parse::<Policy>()
            .unwrap_err()
            .to_string()
            .contains("truncated"));
        let nan = dir.path().join("bad.json");
        std::fs::write(&nan, serde_json::json!({"probs": vec![0.5; 1296]}).to_string()).unwrap();
        assert!(format!("theta:{}", nan.display())
            .parse::<Policy>()
            .unwrap_err()
            .to_string()
            .contains("sum"));
    }

    /// Property: random specs built from the grammar parse, print and re-parse to the same value.
    #[test]
    fn random_specs_round_trip() {
        let mut rng = Rng::new(42);
        let mut pick = |n: usize| (rng.next_f64() * n as f64) as usize % n;
        for _ in 0..500 {
            let spec = match pick(6) {
                0 => format!("randaugment:n={},m={},bins={}", pick(5), pick(10), 10 + pick(30)),
                1 => format!("trivialaugment:bins={}", 2 + pick(40)),
                2 => format!("pair:{}+{}", aws_name(pick(36)), aws_name(pick(36))),
                3 => format!("autoaugment:{}", ["cifar10", "svhn", "imagenet"][pick(3)]),
                _ => {
                    let subs: Vec<String> = (0..1 + pick(4))
                        .map(|_| {
                            (0..1 + pick(3))
                                .map(|_| {
                                    let op = OpKind::ALL[1 + pick(14)];
                                    let p = pick(11) as f64 / 10.0;
                                    if op.range().is_some() {
                                        format!("({op},{p},{})", pick(10))
                                    } else {
                                        format!("({op},{p})")
                                    }
                                })
                                .collect()
                        })
                        .collect();
                    format!("subpolicies:{}", subs.join(";"))
                }
            };
            let p: Policy = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
            let again: Policy = p.to_string().parse().unwrap();
            assert_eq!(again, p, "{spec}");
        }
    }
}
