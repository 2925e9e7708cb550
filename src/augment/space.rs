//! The AWS search space (docs/method.md): 36 operations — the 11 magnitude ops at levels 3, 6 and 9
//! of AutoAugment's 10-level grid, plus AutoContrast, Equalize and Invert — and their ordered
//! pairs, indexed `op1 · 36 + op2` (0..1296). Both ops of a pair are always applied; signed
//! ops draw their sign per application.

use super::ops::{fmt_num, AugmentError, Op, OpKind};
use crate::suggest;

/// Number of AWS operations.
pub const NUM_OPS: usize = 36;
/// Number of ordered pairs.
pub const NUM_PAIRS: usize = NUM_OPS * NUM_OPS;

/// AutoAugment's translate range: 150/331 of the image size at level 9.
const TRANSLATE_MAX: f64 = 150.0 / 331.0;

/// The 36 operations in docs/method.md's order; magnitudes by increasing strength (grid levels 3,
/// 6, 9). Solarize thresholds are on docs/method.md's 256 scale; Posterize keeps 7, 5, 4 bits.
pub fn aws_ops() -> [Op; NUM_OPS] {
    let op = |kind, magnitude| Op { kind, magnitude };
    let levels = |kind, max: f64| [1.0, 2.0, 3.0].map(|l| op(kind, max * l / 3.0));
    let enhance = |kind| [op(kind, 0.3), op(kind, 0.6), op(kind, 0.9)];
    let mut v = Vec::with_capacity(NUM_OPS);
    v.push(op(OpKind::AutoContrast, 0.0));
    v.extend(enhance(OpKind::Brightness));
    v.extend(enhance(OpKind::Color));
    v.extend(enhance(OpKind::Contrast));
    v.push(op(OpKind::Equalize, 0.0));
    v.push(op(OpKind::Invert, 0.0));
    v.extend([7.0, 5.0, 4.0].map(|b| op(OpKind::Posterize, b)));
    v.extend([10.0, 20.0, 30.0].map(|d| op(OpKind::Rotate, d)));
    v.extend(enhance(OpKind::Sharpness));
    v.extend([0.1, 0.2, 0.3].map(|s| op(OpKind::ShearX, s)));
    v.extend([0.1, 0.2, 0.3].map(|s| op(OpKind::ShearY, s)));
    v.extend([3.0, 6.0, 9.0].map(|l| op(OpKind::Solarize, 256.0 * (1.0 - l / 9.0))));
    v.extend(levels(OpKind::TranslateX, TRANSLATE_MAX));
    v.extend(levels(OpKind::TranslateY, TRANSLATE_MAX));
    let mut out = [Op::IDENTITY; NUM_OPS];
    out.copy_from_slice(&v);
    out
}

/// The AutoAugment grid level (3, 6 or 9) of AWS op `i`, `None` for ops without magnitude.
pub fn aws_level(i: usize) -> Option<usize> {
    let op = aws_ops()[i];
    op.kind.range()?;
    let same_kind_before = aws_ops()[..i].iter().filter(|o| o.kind == op.kind).count();
    Some(3 * (same_kind_before + 1))
}

/// Display name of AWS op `i`: `Rotate:20`, `Invert`.
pub fn aws_name(i: usize) -> String {
    let op = aws_ops()[i];
    if op.kind.range().is_some() {
        format!("{}:{}", op.kind, fmt_num(op.magnitude))
    } else {
        op.kind.to_string()
    }
}

/// All 36 names, for completion and help.
pub fn aws_names() -> Vec<String> {
    (0..NUM_OPS).map(aws_name).collect()
}

/// Index of an AWS op by name (`Rotate:20`, `solarize:85.3333`, `Invert`); a kind alone is
/// accepted when it has no magnitude.
pub fn aws_index(name: &str) -> Result<usize, AugmentError> {
    let t = name.trim();
    let names = aws_names();
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
        return Ok(i);
    }
    // Accept numerically equal magnitudes (`Rotate:20.0`, `Solarize:85.33`).
    if let Some((k, m)) = t.split_once(':') {
        if let (Ok(kind), Ok(m)) = (k.parse::<OpKind>(), m.trim().parse::<f64>()) {
            if let Some(i) = aws_ops()
                .iter()
                .position(|o| o.kind == kind && (o.magnitude - m).abs() < 0.01)
            {
                return Ok(i);
            }
        }
    }
    Err(AugmentError::UnknownOp {
        name: t.to_owned(),
        hint: suggest::hint(t, names.iter().map(String::as_str)),
        valid: names.join(", "),
    })
}

/// Pair index of (op1, op2).
pub fn pair_index(op1: usize, op2: usize) -> usize {
    op1 * NUM_OPS + op2
}

/// (op1, op2) of a pair index.
pub fn pair_ops(pair: usize) -> (usize, usize) {
    (pair / NUM_OPS, pair % NUM_OPS)
}

/// Whether `op` is one of `pair`'s two ops (a family of pairs, e.g. the 71 label-breaking
/// Invert-containing ones).
pub fn pair_contains(pair: usize, op: usize) -> bool {
    let (a, b) = pair_ops(pair);
    a == op || b == op
}

/// `Rotate:20+Invert`.
pub fn pair_name(pair: usize) -> String {
    let (a, b) = pair_ops(pair);
    format!("{}+{}", aws_name(a), aws_name(b))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn a_family_is_the_pairs_containing_its_op() {
        let invert = aws_index("Invert").unwrap();
        let family: Vec<usize> = (0..NUM_PAIRS).filter(|&k| pair_contains(k, invert)).collect();
        assert_eq!(family.len(), 2 * NUM_OPS - 1);
        assert!(family.contains(&pair_index(invert, invert)) && family.contains(&pair_index(0, invert)));
        assert!(!pair_contains(pair_index(0, 1), invert));
    }

    #[test]
    fn thirty_six_ops_as_method_lists_them() {
        let ops = aws_ops();
        let names = aws_names();
        assert_eq!(names.len(), 36);
        assert_eq!(names[0], "AutoContrast");
        assert_eq!(&names[1..4], ["Brightness:0.3", "Brightness:0.6", "Brightness:0.9"]);
        assert_eq!(
            &names[10..15],
            ["Equalize", "Invert", "Posterize:7", "Posterize:5", "Posterize:4"]
        );
        assert_eq!(&names[27..30], ["Solarize:170.6667", "Solarize:85.3333", "Solarize:0"]);
        assert_eq!(names[30], "TranslateX:0.1511");
        assert_eq!(names[35], "TranslateY:0.4532");
        assert!((ops[32].magnitude - 150.0 / 331.0).abs() < 1e-12);
        let no_magnitude = ops.iter().filter(|o| o.kind.range().is_none()).count();
        assert_eq!(no_magnitude, 3);
        let mut kinds: Vec<_> = ops.iter().map(|o| o.kind).collect();
        kinds.dedup();
        assert_eq!(kinds.len(), 14);
        for op in ops {
            Op::new(op.kind, op.magnitude).unwrap();
        }
        assert_eq!(aws_level(14), Some(9));
        assert_eq!(aws_level(15), Some(3));
        assert_eq!(aws_level(0), None);
    }

    #[test]
    fn names_and_pairs_round_trip() {
        for i in 0..NUM_OPS {
            assert_eq!(aws_index(&aws_name(i)).unwrap(), i);
        }
        assert_eq!(aws_index("rotate:20.0").unwrap(), 16);
        assert_eq!(aws_index("Solarize:85.33").unwrap(), 28);
        let e = aws_index("Rotate:25").unwrap_err().to_string();
        assert!(e.contains("did you mean `Rotate:20`") || e.contains("Rotate:20"), "{e}");
        for p in [0, 37, 1295] {
            let (a, b) = pair_ops(p);
            assert_eq!(pair_index(a, b), p);
        }
        assert_eq!(pair_name(16 * 36 + 11), "Rotate:20+Invert");
    }
}
