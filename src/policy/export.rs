//! Export for PyTorch users: any policy as JSON in the `(name, probability, magnitude-bin)`
//! sub-policy form torchvision's and timm's AutoAugment code consumes, with per-sub-policy
//! weights, and for AWS policies the full pair distribution.

use serde_json::{json, Value};

use super::{AutoAugmentTable, Policy, SubOp};
use crate::augment::space::{aws_level, aws_name, aws_ops, pair_name, pair_ops, NUM_PAIRS};

/// How to use an export in a PyTorch training script (also in the JSON's `note`).
pub const EXPORT_NOTE: &str = "\
Each sub-policy is a list of [name, probability, magnitude_bin] on torchvision's 10-bin \
AutoAugment grid (bin None: no magnitude). Pick one sub-policy per image with probability \
`weights[i]` (torchvision's AutoAugment picks uniformly, so subclass it: set `self._policies` \
to the list and override forward to use random.choices(weights=...)), apply each op with its \
probability, and flip the sign of signed ops with probability 1/2. Where a torchvision class \
does the same, `torchvision` names its constructor. AWS Solarize thresholds are on the AWS paper's \
256 scale (170.67, 85.33, 0) where torchvision's bins give 170, 85, 0; `magnitudes` holds the \
exact values in augwise's units.";

fn sub_op_json(s: &SubOp) -> Value {
    json!([s.op.name(), s.prob, s.bin])
}

/// The export document for `policy` on H×W images, keeping the `top` most likely AWS pairs
/// as sub-policies (the full distribution is always included for AWS policies).
pub fn torchvision_export(policy: &Policy, top: usize) -> Value {
    let mut doc = json!({
        "format": "augwise-policy/1",
        "policy": policy.to_string(),
        "note": EXPORT_NOTE,
    });
    let subs_and_weights = |subs: Vec<Vec<SubOp>>| {
        let n = subs.len().max(1) as f64;
        let weights: Vec<f64> = subs.iter().map(|_| 1.0 / n).collect();
        (
            subs.iter()
                .map(|s| s.iter().map(sub_op_json).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            weights,
        )
    };
    match policy {
        Policy::None => {
            doc["torchvision"] = json!("torch.nn.Identity()");
            doc["sub_policies"] = json!([]);
        }
        Policy::AutoAugment { table } => {
            let name = match table {
                AutoAugmentTable::Cifar10 => "CIFAR10",
                AutoAugmentTable::Svhn => "SVHN",
                AutoAugmentTable::Imagenet => "IMAGENET",
            };
            doc["torchvision"] = json!(format!(
                "torchvision.transforms.v2.AutoAugment(AutoAugmentPolicy.{name})"
            ));
            let (s, w) = subs_and_weights(table.sub_policies());
            doc["sub_policies"] = json!(s);
            doc["weights"] = json!(w);
        }
        Policy::SubPolicies { sub_policies } => {
            let (s, w) = subs_and_weights(sub_policies.clone());
            doc["sub_policies"] = json!(s);
            doc["weights"] = json!(w);
        }
        Policy::RandAugment { n, m, bins } => {
            doc["torchvision"] = json!(format!(
                "torchvision.transforms.v2.RandAugment(num_ops={n}, magnitude={m}, num_magnitude_bins={bins})"
            ));
        }
        Policy::TrivialAugment { bins } => {
            doc["torchvision"] = json!(format!(
                "torchvision.transforms.v2.TrivialAugmentWide(num_magnitude_bins={bins})"
            ));
        }
        Policy::AwsUniform | Policy::AwsPair { .. } | Policy::AwsTheta { .. } => {
            let Some(dist) = policy.distribution() else { return doc };
            let ops = aws_ops();
            let best = dist.top(top.clamp(1, NUM_PAIRS));
            let kept: Vec<_> = best.iter().filter(|(_, p)| *p > 0.0).collect();
            let mass: f64 = kept.iter().map(|(_, p)| p).sum();
            let sub = |i: usize| json!([ops[i].kind.name(), 1.0, aws_level(i)]);
            doc["sub_policies"] = json!(kept
                .iter()
                .map(|(k, _)| {
                    let (a, b) = pair_ops(*k);
                    json!([sub(a), sub(b)])
                })
                .collect::<Vec<_>>());
            doc["weights"] = json!(kept.iter().map(|(_, p)| p / mass).collect::<Vec<_>>());
            doc["pairs"] = json!(kept.iter().map(|(k, _)| pair_name(*k)).collect::<Vec<_>>());
            doc["magnitudes"] = json!(kept
                .iter()
                .map(|(k, _)| {
                    let (a, b) = pair_ops(*k);
                    json!([
                        [ops[a].kind.name(), ops[a].magnitude],
                        [ops[b].kind.name(), ops[b].magnitude]
                    ])
                })
                .collect::<Vec<_>>());
            doc["covered_mass"] = json!(mass);
            doc["ops"] = json!((0..ops.len()).map(aws_name).collect::<Vec<_>>());
            doc["probs"] = json!(dist.probs());
        }
    }
    doc
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use crate::policy::Theta;

    #[test]
    fn aws_export_has_top_pairs_weights_and_the_full_distribution() {
        let mut t = Theta::uniform();
        t.a[16] = 4.0; // Rotate:20 first
        t.b[16][11] = 4.0; // then Invert
        let p = Policy::AwsTheta {
            probs: t.distribution().unwrap(),
            source: None,
        };
        let doc = torchvision_export(&p, 5);
        assert_eq!(doc["pairs"][0], "Rotate:20+Invert");
        assert_eq!(
            doc["sub_policies"][0],
            json!([["Rotate", 1.0, 6], ["Invert", 1.0, null]])
        );
        let w: Vec<f64> = serde_json::from_value(doc["weights"].clone()).unwrap();
        assert_eq!(w.len(), 5);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(w.windows(2).all(|x| x[0] >= x[1]));
        assert_eq!(doc["probs"].as_array().unwrap().len(), 1296);
        // The export loads back as a θ file with the same distribution.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("export.json");
        std::fs::write(&f, doc.to_string()).unwrap();
        let back: Policy = format!("theta:{}", f.display()).parse().unwrap();
        assert_eq!(back.distribution(), p.distribution());
    }

    #[test]
    fn published_policies_export_their_tables_or_constructors() {
        let aa = torchvision_export(&"autoaugment:svhn".parse().unwrap(), 25);
        assert_eq!(aa["sub_policies"].as_array().unwrap().len(), 25);
        assert_eq!(
            aa["sub_policies"][0],
            json!([["ShearX", 0.9, 4], ["Invert", 0.2, null]])
        );
        let ra = torchvision_export(&"randaugment:n=2,m=9".parse().unwrap(), 25);
        assert!(ra["torchvision"]
            .as_str()
            .unwrap()
            .contains("RandAugment(num_ops=2, magnitude=9"));
    }
}
