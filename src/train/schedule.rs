//! Learning-rate schedules, evaluated at a fractional epoch so a schedule can be run in pieces
//! (pretrain 2, then 3 more) and land on exactly the same rates as in one go.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// Stage 2 fine-tuning: stage 1's final rate, held.
    Constant { lr: f64 },
    /// Stage 1: linear warm-up from `start` to `peak` over `warmup_epochs`, then cosine from
    /// `peak` to `floor` at `total_epochs`.
    WarmupCosine {
        start: f64,
        peak: f64,
        floor: f64,
        warmup_epochs: f64,
        total_epochs: f64,
    },
}

impl LrSchedule {
    /// docs/method.md's official stage-1 schedule for `epochs`: 1 epoch 0.05→0.2, cosine to 0.001.
    ///
    /// ```
    /// use augwise::train::LrSchedule;
    /// let s = LrSchedule::official(200.0);
    /// assert_eq!(s.at(0.0), 0.05);
    /// assert!((s.at(1.0) - 0.2).abs() < 1e-12);
    /// assert_eq!(s.final_lr(), 0.001); // stage 2 fine-tunes at this constant rate
    /// ```
    pub fn official(epochs: f64) -> Self {
        Self::WarmupCosine {
            start: 0.05,
            peak: 0.2,
            floor: 0.001,
            warmup_epochs: 1.0,
            total_epochs: epochs,
        }
    }

    /// The rate at fractional epoch `t` (0 at the start of training).
    pub fn at(&self, t: f64) -> f64 {
        match *self {
            Self::Constant { lr } => lr,
            Self::WarmupCosine {
                start,
                peak,
                floor,
                warmup_epochs,
                total_epochs,
            } => {
                if t < warmup_epochs {
                    start + (peak - start) * t / warmup_epochs
                } else {
                    let span = (total_epochs - warmup_epochs).max(f64::EPSILON);
                    let p = ((t - warmup_epochs) / span).clamp(0.0, 1.0);
                    floor + 0.5 * (peak - floor) * (1.0 + (PI * p).cos())
                }
            }
        }
    }

    /// The rate the schedule ends on (what stage 2 holds constant).
    pub fn final_lr(&self) -> f64 {
        match *self {
            Self::Constant { lr } => lr,
            Self::WarmupCosine { floor, .. } => floor,
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn official_schedule_values() {
        let s = LrSchedule::official(200.0);
        assert_eq!(s.at(0.0), 0.05);
        assert!((s.at(0.5) - 0.125).abs() < 1e-12);
        assert!((s.at(1.0) - 0.2).abs() < 1e-12);
        // Halfway through the cosine: the midpoint of peak and floor.
        assert!((s.at(100.5) - (0.2 + 0.001) / 2.0).abs() < 1e-12);
        assert!((s.at(200.0) - 0.001).abs() < 1e-12);
        assert!((s.at(250.0) - 0.001).abs() < 1e-12);
        assert_eq!(s.final_lr(), 0.001);
        // Monotone decreasing after warm-up.
        let v: Vec<f64> = (10..=200).map(|e| s.at(e as f64)).collect();
        assert!(v.windows(2).all(|w| w[1] <= w[0]));
        assert_eq!(LrSchedule::Constant { lr: 0.001 }.at(7.3), 0.001);
    }
}
