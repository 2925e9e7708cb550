//! Charts with plotters and no system libraries: each renders to an SVG string and to PNG
//! bytes, both with the embedded DejaVu Sans (drawn through ab_glyph in the PNG, as glyph
//! outlines in the SVG), plus a compact text version (sparkline or bars) for terminals.

use std::sync::Once;

mod text;
pub use text::outline_text;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use crate::augment::space::{aws_name, NUM_OPS};
use crate::policy::Theta;
use crate::search::stats::Estimate;
use crate::search::{
    CompareReport, CorrelateReport, History, NullReport, OpGallery, ProbeReport, SampleReport, Trajectory,
};
use crate::train::EpochReport;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("nothing to plot yet: {0}")]
    Empty(String),
    #[error("chart drawing failed: {0}")]
    Draw(String),
}

/// A rendered chart.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub svg: String,
    #[serde(skip)]
    pub png: Vec<u8>,
    /// The trend in text, for a terminal.
    pub text: String,
}

/// The charts `plot` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    Rewards,
    Accuracy,
    Theta,
    Marginals,
    Images,
    Ops,
    Probes,
    Compare,
    Correlate,
    Trajectory,
}

impl crate::suggest::Named for ChartKind {
    const ALL: &'static [Self] = &[
        ChartKind::Rewards,
        ChartKind::Accuracy,
        ChartKind::Theta,
        ChartKind::Marginals,
        ChartKind::Images,
        ChartKind::Ops,
        ChartKind::Probes,
        ChartKind::Compare,
        ChartKind::Correlate,
        ChartKind::Trajectory,
    ];
    const WHAT: &'static str = "chart";

    fn name(self) -> &'static str {
        match self {
            ChartKind::Rewards => "rewards",
            ChartKind::Accuracy => "accuracy",
            ChartKind::Theta => "theta",
            ChartKind::Marginals => "marginals",
            ChartKind::Images => "images",
            ChartKind::Ops => "ops",
            ChartKind::Probes => "probes",
            ChartKind::Compare => "compare",
            ChartKind::Correlate => "correlate",
            ChartKind::Trajectory => "trajectory",
        }
    }
}

const FONT: &str = "sans-serif";

/// Okabe & Ito's colour-blind-safe palette: series stay apart under every common colour-vision
/// deficiency (and in greyscale, by lightness).
const OI_BLUE: RGBColor = RGBColor(0, 114, 178);
const OI_ORANGE: RGBColor = RGBColor(230, 159, 0);
const OI_GREEN: RGBColor = RGBColor(0, 158, 115);
const OI_VERMILION: RGBColor = RGBColor(213, 94, 0);

/// How a legend entry draws its series.
#[derive(Clone, Copy)]
enum Key {
    Dot(RGBColor),
    Line(RGBColor),
    Bar(RGBColor),
}

/// The legend beside the plot, never over the data: `area` is the strip right of the chart.
fn side_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[(&str, Key)]) -> Result<(), ChartError> {
    for (i, (label, key)) in entries.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        match *key {
            Key::Dot(c) => area.draw(&Circle::new((14, y), 4, c.filled())),
            Key::Line(c) => area.draw(&PathElement::new(vec![(4, y), (24, y)], c.stroke_width(2))),
            Key::Bar(c) => area.draw(&PathElement::new(vec![(14, y - 7), (14, y + 7)], c.stroke_width(2))),
        }
        .map_err(err)?;
        area.draw(&Text::new(label.to_string(), (32, y - 7), (FONT, 13)))
            .map_err(err)?;
    }
    Ok(())
}

fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

fn err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

/// Draw with `f` into an SVG string and a PNG.
macro_rules! render {
    ($name:expr, $w:expr, $h:expr, $text:expr, $f:expr) => {{
        fonts();
        let (w, h): (u32, u32) = ($w, $h);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            let f = $f;
            f(&root)?;
            root.present().map_err(err)?;
        }
        // The SVG carries its font: text as DejaVu Sans outlines, like the PNG.
        let svg = outline_text(&svg);
        let mut rgb = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            let f = $f;
            f(&root)?;
            root.present().map_err(err)?;
        }
        let png = encode_png(&rgb, w, h)?;
        Ok(Chart {
            name: $name.to_owned(),
            width: w,
            height: h,
            svg,
            png,
            text: $text,
        })
    }};
}

/// Pixel pictures: drawn once into a bitmap; the SVG embeds that PNG (one `<rect>` per pixel
/// would be megabytes), so both renderings show the same pixels.
fn raster(
    name: &str,
    (w, h): (u32, u32),
    text: String,
    f: impl Fn(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), ChartError>,
) -> Result<Chart, ChartError> {
    fonts();
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        f(&root)?;
        root.present().map_err(err)?;
    }
    let png = encode_png(&rgb, w, h)?;
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><title>{}</title><image width=\"{w}\" height=\"{h}\" href=\"{}\"/></svg>",
        crate::present::escape(&text),
        crate::present::png_data_uri(&png)
    );
    Ok(Chart {
        name: name.to_owned(),
        width: w,
        height: h,
        svg,
        png,
        text,
    })
}

/// Draw image `i` of a uint8 N×C×H×W buffer at (ox, oy), each pixel a `scale`² square.
fn blit(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    buf: &[u8],
    shape: [i64; 4],
    i: i64,
    (ox, oy): (i32, i32),
    scale: i32,
) -> Result<(), ChartError> {
    let [_, c, h, w] = shape;
    let at = |ch: i64, y: i64, x: i64| {
        buf.get((((i * c + ch.min(c - 1)) * h + y) * w + x) as usize)
            .copied()
            .unwrap_or(0)
    };
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (ox + x as i32 * scale, oy + y as i32 * scale);
            let color = RGBColor(at(0, y, x), at(1, y, x), at(2, y, x));
            root.draw(&Rectangle::new([(px, py), (px + scale, py + scale)], color.filled()))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        rgb,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(err)?;
    Ok(out)
}

/// `▁▂▃▅▇` for a series.
pub fn sparkline(v: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    v.iter()
        .map(|&x| {
            if hi > lo {
                BARS[(((x - lo) / (hi - lo)) * 7.0).round() as usize]
            } else {
                BARS[3]
            }
        })
        .collect()
}

/// Epochs and updates are counted: label whole numbers only.
fn whole(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 && *x >= 0.5 {
        format!("{:.0}", x)
    } else {
        String::new()
    }
}

/// What a line chart draws on its axes, in order: plain data, so each chart is a description
/// and one function ([`line_chart`]) holds plotters' set-up.
enum Mark {
    Dots {
        pts: Vec<(f64, f64)>,
        radius: u32,
        style: ShapeStyle,
    },
    Line {
        pts: Vec<(f64, f64)>,
        style: ShapeStyle,
    },
    Dashed {
        pts: Vec<(f64, f64)>,
        style: ShapeStyle,
    },
    /// Vertical 95% bars: (x, low, mean, high).
    Bars {
        bars: Vec<(f64, f64, f64, f64)>,
        style: ShapeStyle,
    },
    Label {
        text: &'static str,
        at: (f64, f64),
    },
}

/// A chart of percentages over epochs or updates, its legend beside it: rewards, accuracy and
/// trajectory.
struct LineChart {
    name: &'static str,
    size: (u32, u32),
    /// Width of the plot; the legend takes the rest.
    plot_width: u32,
    caption: (&'static str, u32),
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    /// Axis descriptions, x then y.
    desc: (&'static str, &'static str),
    /// Decimals of the y axis' percentages.
    y_digits: usize,
    marks: Vec<Mark>,
    legend: Vec<(String, Key)>,
    text: String,
}

fn line_chart(spec: LineChart) -> Result<Chart, ChartError> {
    let legend: Vec<(&str, Key)> = spec.legend.iter().map(|(l, k)| (l.as_str(), *k)).collect();
    render!(
        spec.name,
        spec.size.0,
        spec.size.1,
        spec.text.clone(),
        |root: &DrawingArea<_, Shift>| -> Result<(), ChartError> {
            root.fill(&WHITE).map_err(err)?;
            let (plot, side) = root.split_horizontally(spec.plot_width);
            let mut c = ChartBuilder::on(&plot)
                .caption(spec.caption.0, (FONT, spec.caption.1))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(spec.x.clone(), spec.y.clone())
                .map_err(err)?;
            c.configure_mesh()
                .x_desc(spec.desc.0)
                .y_desc(spec.desc.1)
                .x_label_formatter(&whole)
                .y_label_formatter(&|y| format!("{:.*}%", spec.y_digits, 100.0 * y))
                .label_style((FONT, 14))
                .draw()
                .map_err(err)?;
            for mark in &spec.marks {
                match mark {
                    Mark::Dots { pts, radius, style } => {
                        c.draw_series(pts.iter().map(|&p| Circle::new(p, *radius, *style)))
                    }
                    Mark::Line { pts, style } => c.draw_series(LineSeries::new(pts.clone(), *style)),
                    Mark::Dashed { pts, style } => c.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, *style)),
                    Mark::Bars { bars, style } => c.draw_series(
                        bars.iter()
                            .map(|&(x, a, m, b)| ErrorBar::new_vertical(x, a, m, b, *style, 12)),
                    ),
                    Mark::Label { text, at } => c.draw_series(std::iter::once(Text::new(*text, *at, (FONT, 13)))),
                }
                .map_err(err)?;
            }
            side_legend(&side, &legend)
        }
    )
}

fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(0.005);
    (lo - pad, hi + pad)
}

/// Reward of every trajectory per update, with the baseline and the running best mean reward.
pub fn rewards(h: &History) -> Result<Chart, ChartError> {
    if h.updates.is_empty() {
        return Err(ChartError::Empty("no updates yet (`step`)".into()));
    }
    let pts: Vec<(f64, f64)> = h
        .updates
        .iter()
        .flat_map(|u| u.ppo.rewards.iter().map(move |r| (u.update as f64, *r)))
        .collect();
    let base: Vec<(f64, f64)> = h.updates.iter().map(|u| (u.update as f64, u.ppo.baseline)).collect();
    let best: Vec<(f64, f64)> = h
        .updates
        .iter()
        .map(|u| (u.update as f64, u.best_mean_reward))
        .collect();
    let means: Vec<f64> = h.updates.iter().map(|u| u.ppo.mean_reward).collect();
    // Each update's mean with its 95% interval across trajectories.
    let bars: Vec<(f64, Estimate)> = h
        .updates
        .iter()
        .map(|u| (u.update as f64, Estimate::of(&u.ppo.rewards)))
        .collect();
    let bounds = bars
        .iter()
        .flat_map(|(_, e)| e.ci95.map(|(a, b)| [a, b]).unwrap_or([e.mean, e.mean]));
    let (lo, hi) = range(pts.iter().map(|p| p.1).chain(base.iter().map(|p| p.1)).chain(bounds));
    let n = h.updates.len() as f64;
    let last = &bars[bars.len() - 1].1;
    let text = format!(
        "mean reward per update {} {:.2}% → {} (bars: 95% CI across trajectories)",
        sparkline(&means),
        100.0 * means[0],
        last.percent_short()
    );
    let bars = bars
        .iter()
        .map(|(x, e)| {
            let (a, b) = e.ci95.unwrap_or((e.mean, e.mean));
            (*x, a, e.mean, b)
        })
        .collect();
    line_chart(LineChart {
        name: "rewards",
        size: (960, 480),
        plot_width: 780,
        caption: ("Rewards per trajectory", 22),
        x: 0.5..n + 0.5,
        y: lo..hi,
        desc: ("update", "reward (val accuracy)"),
        y_digits: 1,
        marks: vec![
            Mark::Dots {
                pts,
                radius: 3,
                style: OI_BLUE.mix(0.5).filled(),
            },
            Mark::Bars {
                bars,
                style: BLACK.stroke_width(2),
            },
            Mark::Line {
                pts: base,
                style: OI_VERMILION.stroke_width(2),
            },
            Mark::Line {
                pts: best,
                style: OI_GREEN.stroke_width(2),
            },
        ],
        legend: vec![
            ("trajectory reward".into(), Key::Dot(OI_BLUE)),
            ("mean ± 95% CI".into(), Key::Bar(BLACK)),
            ("baseline (EMA)".into(), Key::Line(OI_VERMILION)),
            ("best mean reward".into(), Key::Line(OI_GREEN)),
        ],
        text,
    })
}

/// Stage-1 train/validation accuracy per epoch, and each update's mean reward.
pub fn accuracy(h: &History) -> Result<Chart, ChartError> {
    if h.pretrain.is_empty() {
        return Err(ChartError::Empty("no pretraining yet (`pretrain`)".into()));
    }
    let train: Vec<(f64, f64)> = h
        .pretrain
        .iter()
        .enumerate()
        .map(|(i, e)| (i as f64 + 1.0, e.train_acc))
        .collect();
    let val: Vec<(f64, f64)> = h
        .pretrain
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.val_acc.map(|v| (i as f64 + 1.0, v)))
        .collect();
    let e0 = h.pretrain.len() as f64;
    let fine: Vec<(f64, f64)> = h
        .updates
        .iter()
        .map(|u| (e0 + u.update as f64, u.ppo.mean_reward))
        .collect();
    let n = e0 + h.updates.len() as f64;
    let vals: Vec<f64> = val.iter().map(|p| p.1).collect();
    let text = format!(
        "stage-1 val accuracy {} {:.2}%",
        sparkline(&vals),
        100.0 * vals.last().copied().unwrap_or(0.0)
    );
    let line = |pts, color: RGBColor| Mark::Line {
        pts,
        style: color.stroke_width(2),
    };
    line_chart(LineChart {
        name: "accuracy",
        size: (980, 480),
        plot_width: 780,
        caption: ("Accuracy: stage 1, then each update's mean reward", 20),
        x: 0.5..n + 0.5,
        y: 0.0..1.0,
        desc: ("pretrain epoch, then update", "accuracy"),
        y_digits: 0,
        marks: vec![line(train, OI_BLUE), line(val, OI_VERMILION), line(fine, OI_GREEN)],
        legend: vec![
            ("stage 1 train (augmented)".into(), Key::Line(OI_BLUE)),
            ("stage 1 validation".into(), Key::Line(OI_VERMILION)),
            ("fine-tune mean reward".into(), Key::Line(OI_GREEN)),
        ],
        text,
    })
}

/// The method's two stages in one picture: stage 1's validation accuracy up to the snapshot,
/// then every trajectory of the last `evaluate` fine-tuning from it, one of them drawn out
/// with its best `top` epochs marked and its reward — their mean — as a level line.
pub fn trajectory(pretrain: &[EpochReport], trajectories: &[Trajectory], top: usize) -> Result<Chart, ChartError> {
    let e0 = pretrain.len();
    let snapshot = pretrain.last().and_then(|e| e.val_acc);
    let (Some(snapshot), Some(first)) = (snapshot, trajectories.first()) else {
        return Err(ChartError::Empty(
            "needs stage 1 with a validation split and one `evaluate` (or `step`) of this session".into(),
        ));
    };
    let stage1: Vec<(f64, f64)> = pretrain
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.val_acc.map(|v| (i as f64 + 1.0, v)))
        .collect();
    let branch = |t: &Trajectory| -> Vec<(f64, f64)> {
        std::iter::once((e0 as f64, snapshot))
            .chain(t.accuracies.iter().enumerate().map(|(j, &a)| ((e0 + j + 1) as f64, a)))
            .collect()
    };
    let best: Vec<(f64, f64)> = crate::search::best_epochs(&first.accuracies, top)
        .into_iter()
        .map(|j| ((e0 + j + 1) as f64, first.accuracies[j]))
        .collect();
    let fine = trajectories.iter().map(|t| t.accuracies.len()).max().unwrap_or(0);
    let n = (e0 + fine) as f64;
    let (lo, hi) = range(
        stage1
            .iter()
            .map(|p| p.1)
            .chain(trajectories.iter().flat_map(|t| t.accuracies.iter().copied())),
    );
    let text = format!(
        "stage 1: {e0} epochs, val {:.2}% at the snapshot; trajectory seed {}: fine-tune val {} → reward {:.2}% (mean of its best {})",
        100.0 * snapshot,
        first.seed,
        sparkline(&first.accuracies),
        100.0 * first.reward,
        best.len()
    );
    let (grey, dark) = (RGBColor(170, 170, 170), RGBColor(60, 60, 60));
    let (x0, n_best) = (e0 as f64, best.len());
    let mut marks = vec![
        Mark::Dashed {
            pts: vec![(x0, lo), (x0, hi)],
            style: dark.stroke_width(2),
        },
        Mark::Label {
            text: "snapshot",
            at: (x0 + 0.08, hi - (hi - lo) * 0.03),
        },
    ];
    marks.extend(trajectories.iter().skip(1).map(|t| Mark::Line {
        pts: branch(t),
        style: grey.stroke_width(1),
    }));
    marks.extend([
        Mark::Line {
            pts: stage1,
            style: OI_BLUE.stroke_width(2),
        },
        Mark::Line {
            pts: branch(first),
            style: OI_ORANGE.stroke_width(2),
        },
        Mark::Dots {
            pts: best,
            radius: 7,
            style: OI_VERMILION.stroke_width(2),
        },
        Mark::Line {
            pts: vec![(x0 + 0.5, first.reward), (n + 0.3, first.reward)],
            style: OI_GREEN.stroke_width(2),
        },
    ]);
    line_chart(LineChart {
        name: "trajectory",
        size: (980, 480),
        plot_width: 720,
        caption: ("Stage 1 to the snapshot, then one update's trajectories", 20),
        x: 0.5..n + 0.5,
        y: lo..hi,
        desc: ("epoch (stage 1, then fine-tune)", "validation accuracy"),
        y_digits: 0,
        marks,
        legend: vec![
            ("stage 1 (shared weights)".into(), Key::Line(OI_BLUE)),
            ("snapshot: each fine-tune starts here".into(), Key::Line(dark)),
            ("one trajectory (stage 2)".into(), Key::Line(OI_ORANGE)),
            (format!("its best {n_best} epochs"), Key::Dot(OI_VERMILION)),
            (
                format!("its reward {:.2}%: their mean", 100.0 * first.reward),
                Key::Line(OI_GREEN),
            ),
            (
                format!(
                    "the update's other {} trajectories",
                    trajectories.len().saturating_sub(1)
                ),
                Key::Line(grey),
            ),
        ],
        text,
    })
}

fn heat(v: f64) -> RGBColor {
    // White → dark blue.
    let t = v.clamp(0.0, 1.0);
    RGBColor(
        (255.0 * (1.0 - t)) as u8,
        (255.0 * (1.0 - 0.8 * t)) as u8,
        (255.0 - 100.0 * t) as u8,
    )
}

/// θ as a 36×36 heatmap of pair probabilities (relative to uniform), op names on both axes;
/// with a null judged at this θ, how far θ moved against how far noise moves it.
pub fn theta(theta: &Theta, null: Option<&NullReport>) -> Result<Chart, ChartError> {
    let dist = theta.distribution().map_err(|e| ChartError::Draw(e.to_string()))?;
    let p = dist.probs().to_vec();
    let max = p.iter().copied().fold(0.0, f64::max);
    let names: Vec<String> = (0..NUM_OPS).map(aws_name).collect();
    let top = dist
        .top(3)
        .iter()
        .map(|(k, q)| format!("{} {:.3}%", crate::augment::space::pair_name(*k), 100.0 * q))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "θ entropy {:.4} nats (uniform {:.4}); top: {top}",
        dist.entropy(),
        (1296f64).ln()
    );
    let kl = (1296f64).ln() - dist.entropy();
    let mut moved = vec!["KL from uniform".to_owned(), format!("{kl:.4} nats")];
    match null {
        Some(n) => {
            text.push_str(&format!("\n{}", n.verdict()));
            moved.extend([
                format!("null 95%: {:.4}", n.null_kl_q95),
                format!("moved: p = {:.3}", n.p_movement),
                format!("verdict: p = {:.3}", n.p_value),
                if n.found {
                    "beyond noise".into()
                } else {
                    "within noise".into()
                },
            ]);
        }
        None => moved.push("(no null run)".into()),
    }
    render!(
        "theta",
        1000,
        900,
        text,
        |root: &DrawingArea<_, Shift>| -> Result<(), ChartError> {
            root.fill(&WHITE).map_err(err)?;
            let (left, legend) = root.split_horizontally(840);
            let mut c = ChartBuilder::on(&left)
                .caption("θ: p(op1, op2)", (FONT, 22))
                .margin(10)
                .x_label_area_size(140)
                .y_label_area_size(130)
                .build_cartesian_2d(0i32..NUM_OPS as i32, 0i32..NUM_OPS as i32)
                .map_err(err)?;
            c.draw_series(
                (0..NUM_OPS)
                    .flat_map(|i| (0..NUM_OPS).map(move |j| (i, j)))
                    .map(|(i, j)| {
                        let y = (NUM_OPS - 1 - i) as i32;
                        let v = if max > 0.0 { p[i * NUM_OPS + j] / max } else { 0.0 };
                        Rectangle::new([(j as i32, y), (j as i32 + 1, y + 1)], heat(v).filled())
                    }),
            )
            .map_err(err)?;
            // Labels after the cells, so the rotated ones are not painted over.
            c.configure_mesh()
                .disable_mesh()
                .x_labels(NUM_OPS)
                .y_labels(NUM_OPS)
                // Rotated labels are centred on their tick: lead with as many no-break spaces as
                // the name is long so the visible half sits below the axis, not over the cells.
                .x_label_formatter(&|i| {
                    names
                        .get(*i as usize)
                        .map(|n| format!("{}{n}", "\u{a0}".repeat(n.chars().count() + 1)))
                        .unwrap_or_default()
                })
                .y_label_formatter(&|i| {
                    names
                        .get((NUM_OPS as i32 - 1 - *i) as usize)
                        .cloned()
                        .unwrap_or_default()
                })
                .x_label_style(TextStyle::from((FONT, 11).into_font()).transform(FontTransform::Rotate90))
                .y_label_style((FONT, 11))
                .x_desc("op2")
                .y_desc("op1")
                .draw()
                .map_err(err)?;
            legend
                .draw(&Text::new(format!("max {:.3}%", 100.0 * max), (10, 60), (FONT, 14)))
                .map_err(err)?;
            for k in 0..10 {
                let v = 1.0 - k as f64 / 9.0;
                legend
                    .draw(&Rectangle::new(
                        [(20, 90 + k * 30), (50, 120 + k * 30)],
                        heat(v).filled(),
                    ))
                    .map_err(err)?;
            }
            legend
                .draw(&Text::new(
                    format!("uniform {:.3}%", 100.0 / 1296.0),
                    (10, 420),
                    (FONT, 14),
                ))
                .map_err(err)?;
            // How far θ moved, and against what.
            for (i, line) in moved.iter().enumerate() {
                legend
                    .draw(&Text::new(line.clone(), (10, 470 + 20 * i as i32), (FONT, 13)))
                    .map_err(err)?;
            }
            Ok(())
        }
    )
}

/// The op1 and op2 marginals as horizontal bars (op names on the axis, readable).
pub fn marginals(theta: &Theta) -> Result<Chart, ChartError> {
    let dist = theta.distribution().map_err(|e| ChartError::Draw(e.to_string()))?;
    let (m1, m2) = dist.marginals();
    marginal_bars(&m1, &m2, None)
}

/// The marginals chart from the marginals themselves (36 each); with a null (judged at this
/// θ), each bar carries its simultaneous 95% null band as an outlined box.
pub fn marginal_bars(m1: &[f64], m2: &[f64], null: Option<&NullReport>) -> Result<Chart, ChartError> {
    if m1.len() != NUM_OPS || m2.len() != NUM_OPS {
        return Err(ChartError::Empty(format!(
            "marginals need {NUM_OPS} values each, got {} and {}",
            m1.len(),
            m2.len()
        )));
    }
    let band = null
        .filter(|n| n.ops.len() == 2 * NUM_OPS)
        .map(|n| n.ops.clone())
        .unwrap_or_default();
    let hi = m1
        .iter()
        .chain(m2)
        .copied()
        .chain(band.iter().map(|b| b.hi))
        .fold(0.0, f64::max)
        * 1.15;
    // Ops the score test names (rewards follow their draws) get a `*` by their name.
    let named: Vec<String> = null
        .and_then(|n| n.score.as_ref())
        .map(|s| s.named().iter().map(|o| o.op.clone()).collect())
        .unwrap_or_default();
    let names: Vec<String> = (0..NUM_OPS)
        .map(aws_name)
        .map(|n| {
            if named.iter().any(|o| o.ends_with(&format!(" {n}"))) {
                format!("* {n}")
            } else {
                n
            }
        })
        .collect();
    let mut text = format!("op1 marginal {}\nop2 marginal {}", sparkline(m1), sparkline(m2));
    if let Some(n) = null {
        let outside: Vec<String> = n.ops_outside().iter().map(|b| b.name.clone()).collect();
        text.push_str(&format!(
            "\nnull band (simultaneous 95%, {} null searches): outside: {}",
            n.replicates,
            if outside.is_empty() {
                "none".into()
            } else {
                outside.join(", ")
            }
        ));
        if let Some(score) = &n.score {
            text.push_str(&format!("\nscore: {}", score.summary()));
        }
    }
    let caption = match null.and_then(|n| n.score.as_ref()) {
        _ if band.is_empty() => "θ's marginals".to_owned(),
        Some(score) => format!(
            "θ's marginals, boxes: null band, *: score-test op (p = {:.3})",
            score.p_value
        ),
        None => "θ's marginals; boxes: noise-only null band".to_owned(),
    };
    let rows = NUM_OPS as i32;
    render!(
        "marginals",
        900,
        860,
        text,
        |root: &DrawingArea<_, Shift>| -> Result<(), ChartError> {
            root.fill(&WHITE).map_err(err)?;
            let (title, body) = root.split_vertically(40);
            title
                .draw(&Text::new(caption.clone(), (12, 10), (FONT, 18)))
                .map_err(err)?;
            // Two panels on one op axis: op1 left (with the names), op2 right; each bar's
            // distance from the uniform line is what θ learned.
            let (left, right) = body.split_horizontally(500);
            let panels = [
                (&left, m1, 0, "op1 (first op of a pair)", OI_BLUE, 140),
                (&right, m2, NUM_OPS, "op2 (second op)", OI_ORANGE, 10),
            ];
            for (area, m, offset, what, color, label_width) in panels {
                let mut c = ChartBuilder::on(area)
                    .margin(8)
                    .x_label_area_size(44)
                    .y_label_area_size(label_width)
                    .build_cartesian_2d(0.0..hi, (0..rows).into_segmented())
                    .map_err(err)?;
                c.configure_mesh()
                    .disable_y_mesh()
                    .y_labels(NUM_OPS)
                    .y_label_formatter(&|y| match y {
                        SegmentValue::CenterOf(y) if offset == 0 => {
                            names.get((rows - 1 - y) as usize).cloned().unwrap_or_default()
                        }
                        _ => String::new(),
                    })
                    .x_labels(5)
                    .x_label_formatter(&|x| format!("{:.1}%", 100.0 * x))
                    .x_desc(format!("{what}; red line: uniform 2.78%"))
                    .label_style((FONT, 12))
                    .draw()
                    .map_err(err)?;
                let y = |i: usize| rows - 1 - i as i32;
                c.draw_series(m.iter().enumerate().map(|(i, v)| {
                    let mut bar = Rectangle::new(
                        [(0.0, SegmentValue::Exact(y(i))), (*v, SegmentValue::Exact(y(i) + 1))],
                        color.filled(),
                    );
                    bar.set_margin(2, 2, 0, 0);
                    bar.into_dyn()
                }))
                .map_err(err)?;
                // Null bands: entries 0..36 are op1's, 36..72 op2's.
                c.draw_series(band.iter().skip(offset).take(NUM_OPS).enumerate().map(|(i, b)| {
                    Rectangle::new(
                        [
                            (b.lo.max(0.0), SegmentValue::Exact(y(i))),
                            (b.hi, SegmentValue::Exact(y(i) + 1)),
                        ],
                        RGBColor(90, 90, 90).stroke_width(1),
                    )
                }))
                .map_err(err)?;
                c.draw_series(LineSeries::new(
                    vec![(1.0 / 36.0, SegmentValue::Exact(0)), (1.0 / 36.0, SegmentValue::Last)],
                    OI_VERMILION.stroke_width(2),
                ))
                .map_err(err)?;
            }
            Ok(())
        }
    )
}

/// Originals (top row) and their augmented versions (bottom row) from `sample`.
pub fn images(s: &SampleReport) -> Result<Chart, ChartError> {
    let &[n, c, h, w] = s.preview_shape.as_slice() else {
        return Err(ChartError::Empty("no preview images".into()));
    };
    if n == 0
        || s.preview_original.len() as i64 != n * c * h * w
        || s.preview_augmented.len() != s.preview_original.len()
    {
        return Err(ChartError::Empty("no preview images".into()));
    }
    let scale = (96 / h.max(w)).max(1) as i32;
    let cell = (w as i32 * scale + 8, h as i32 * scale + 8);
    let width = (cell.0 * n as i32).max(260) as u32;
    let height = (cell.1 * 2 + 30) as u32;
    let text = format!("{} images: {}", n, s.preview_ops.join(" | "));
    raster("images", (width, height), text, |root| {
        root.fill(&WHITE).map_err(err)?;
        root.draw(&Text::new("original (top) / augmented (bottom)", (4, 4), (FONT, 14)))
            .map_err(err)?;
        for i in 0..n {
            for (row, buf) in [&s.preview_original, &s.preview_augmented].into_iter().enumerate() {
                blit(
                    root,
                    buf,
                    [n, c, h, w],
                    i,
                    (i as i32 * cell.0 + 4, row as i32 * cell.1 + 26),
                    scale,
                )?;
            }
        }
        Ok(())
    })
}

/// One image under each of the 36 operations, the original first, each with its name.
pub fn ops(g: &OpGallery) -> Result<Chart, ChartError> {
    let &[n, c, h, w] = g.shape.as_slice() else {
        return Err(ChartError::Empty("no gallery images".into()));
    };
    if n == 0 || g.pixels.len() as i64 != n * c * h * w || g.labels.len() as i64 != n {
        return Err(ChartError::Empty("no gallery images".into()));
    }
    const COLS: i64 = 8;
    let scale = (80 / h.max(w)).max(1) as i32;
    let cell = ((w as i32 * scale).max(104) + 8, h as i32 * scale + 24);
    let rows = (n + COLS - 1) / COLS;
    let (width, height) = ((cell.0 * COLS as i32) as u32, (cell.1 * rows as i32 + 30) as u32);
    let text = format!(
        "{} operations on one validation image: {}",
        n - 1,
        g.labels.iter().skip(1).cloned().collect::<Vec<_>>().join(", ")
    );
    raster("ops", (width, height), text, |root| {
        root.fill(&WHITE).map_err(err)?;
        root.draw(&Text::new(
            "The 36 operations of the AWS search space (positive sign)",
            (4, 4),
            (FONT, 15),
        ))
        .map_err(err)?;
        for i in 0..n {
            let (ox, oy) = ((i % COLS) as i32 * cell.0 + 4, (i / COLS) as i32 * cell.1 + 28);
            blit(root, &g.pixels, [n, c, h, w], i, (ox, oy), scale)?;
            root.draw(&Text::new(
                g.labels[i as usize].clone(),
                (ox, oy + h as i32 * scale + 3),
                (FONT, 12),
            ))
            .map_err(err)?;
        }
        Ok(())
    })
}

/// The proxy reward of every policy probed so far (latest probe per policy), with 95%
/// intervals.
pub fn probes(p: &[ProbeReport]) -> Result<Chart, ChartError> {
    let mut rows: Vec<(String, Estimate)> = Vec::new();
    for r in p {
        // Probes from before intervals existed carry only their trajectories.
        let e = if r.estimate.n > 0 {
            r.estimate
        } else {
            Estimate::of(&r.trajectories.iter().map(|t| t.reward).collect::<Vec<_>>())
        };
        match rows.iter_mut().find(|(name, _)| *name == r.policy) {
            Some(row) => row.1 = e,
            None => rows.push((r.policy.clone(), e)),
        }
    }
    if rows.is_empty() {
        return Err(ChartError::Empty("no probes yet (`probe <policy>`)".into()));
    }
    interval_bars("probes", "Proxy reward per policy (bars: 95% CI)", &rows)
}

/// Each policy of a `compare` with its 95% interval (the paired differences are in the text).
pub fn compare(r: &CompareReport) -> Result<Chart, ChartError> {
    let rows: Vec<(String, Estimate)> = r.policies.iter().cloned().zip(r.estimates.iter().copied()).collect();
    if rows.is_empty() {
        return Err(ChartError::Empty("no compare run yet".into()));
    }
    let mut c = interval_bars("compare", "Proxy reward, paired trajectories (bars: 95% CI)", &rows)?;
    c.text = format!(
        "{}\n{}",
        c.text,
        r.comparisons
            .iter()
            .map(|x| format!("{} − {}: {}", x.a, x.b, x.verdict))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(c)
}

/// Horizontal bars with 95% error bars, one per named estimate.
fn interval_bars(name: &str, caption: &str, rows: &[(String, Estimate)]) -> Result<Chart, ChartError> {
    let bounds = |e: &Estimate| e.ci95.unwrap_or((e.mean, e.mean));
    let (lo, hi) = range(rows.iter().flat_map(|(_, e)| [bounds(e).0, bounds(e).1]));
    let lo = lo
        .min(rows.iter().map(|r| bounds(&r.1).0).fold(f64::INFINITY, f64::min) - 0.01)
        .max(0.0);
    let n = rows.len() as i32;
    let text = rows
        .iter()
        .map(|(name, e)| format!("{name:<36} {}", e.percent_short()))
        .collect::<Vec<_>>()
        .join("\n");
    let label_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(8) as u32 * 7 + 16;
    render!(
        name,
        760 + label_width,
        80 + 34 * n as u32,
        text,
        |root: &DrawingArea<_, Shift>| -> Result<(), ChartError> {
            root.fill(&WHITE).map_err(err)?;
            let mut c = ChartBuilder::on(root)
                .caption(caption, (FONT, 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(label_width)
                .build_cartesian_2d(lo..hi, 0i32..3 * n)
                .map_err(err)?;
            // Three units per policy, top to bottom: a bar over two, a gap; the name at its middle.
            c.configure_mesh()
                .disable_y_mesh()
                .y_labels(3 * n as usize + 1)
                .y_label_formatter(&|y| {
                    if y % 3 == 1 {
                        rows.get((n - 1 - y / 3) as usize)
                            .map(|r| r.0.clone())
                            .unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .x_label_formatter(&|x| format!("{:.1}%", 100.0 * x))
                .x_desc("proxy reward (mean of the best two val accuracies)")
                .label_style((FONT, 13))
                .draw()
                .map_err(err)?;
            c.draw_series(rows.iter().enumerate().map(|(i, (_, e))| {
                let y = 3 * (n - 1 - i as i32);
                Rectangle::new([(lo, y), (e.mean, y + 2)], OI_BLUE.mix(0.5).filled())
            }))
            .map_err(err)?;
            c.draw_series(rows.iter().enumerate().filter_map(|(i, (_, e))| {
                let (a, b) = e.ci95?;
                Some(ErrorBar::new_horizontal(
                    3 * (n - 1 - i as i32) + 1,
                    a,
                    e.mean,
                    b,
                    BLACK.stroke_width(2),
                    10,
                ))
            }))
            .map_err(err)?;
            Ok(())
        }
    )
}

/// Proxy reward against full-training accuracy, one point per policy, with τ and ρ.
pub fn correlate(r: &CorrelateReport) -> Result<Chart, ChartError> {
    if r.rows.is_empty() {
        return Err(ChartError::Empty("no correlate run yet".into()));
    }
    let ci = |e: Option<&Estimate>, x: f64| e.and_then(|e| e.ci95).unwrap_or((x, x));
    let (xl, xh) = range(r.rows.iter().enumerate().flat_map(|(i, p)| {
        let (a, b) = ci(r.proxy.get(i), p.1);
        [a, b]
    }));
    let (yl, yh) = range(r.rows.iter().map(|p| p.2));
    let fmt_ci = |c: Option<(f64, f64)>| c.map(|(a, b)| format!(" [{a:+.2}, {b:+.2}]")).unwrap_or_default();
    let text = format!(
        "Kendall τ = {:.3}{}, Spearman ρ = {:.3}{} over {} policies (95% CIs by Fisher z; bars: proxy 95% CI)",
        r.kendall_tau,
        fmt_ci(r.kendall_tau_ci95),
        r.spearman_rho,
        fmt_ci(r.spearman_rho_ci95),
        r.rows.len()
    );
    render!(
        "correlate",
        800,
        520,
        text,
        |root: &DrawingArea<_, Shift>| -> Result<(), ChartError> {
            root.fill(&WHITE).map_err(err)?;
            let mut c = ChartBuilder::on(root)
                .caption(
                    format!(
                        "Proxy vs full training (τ = {:.2}{}, ρ = {:.2}{})",
                        r.kendall_tau,
                        fmt_ci(r.kendall_tau_ci95),
                        r.spearman_rho,
                        fmt_ci(r.spearman_rho_ci95)
                    ),
                    (FONT, 18),
                )
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(xl..xh, yl..yh)
                .map_err(err)?;
            c.configure_mesh()
                .x_desc("proxy reward")
                .y_desc("full-training test accuracy")
                .label_style((FONT, 13))
                .draw()
                .map_err(err)?;
            c.draw_series(r.rows.iter().enumerate().map(|(i, (_, x, y))| {
                let (a, b) = ci(r.proxy.get(i), *x);
                ErrorBar::new_horizontal(*y, a, *x, b, OI_BLUE.stroke_width(1), 8)
            }))
            .map_err(err)?;
            c.draw_series(r.rows.iter().map(|(name, x, y)| {
                EmptyElement::at((*x, *y))
                    + Circle::new((0, 0), 5, OI_BLUE.filled())
                    + Text::new(name.clone(), (6, -14), (FONT, 12))
            }))
            .map_err(err)?;
            Ok(())
        }
    )
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_the_range() {
        assert_eq!(sparkline(&[0.0, 0.5, 1.0]), "▁▅█");
        assert_eq!(sparkline(&[2.0, 2.0]), "▄▄");
    }

    #[test]
    fn theta_heatmap_and_marginals_render_with_labels() {
        let mut t = Theta::uniform();
        t.a[16] = 2.0;
        let c = theta(&t, None).unwrap();
        assert!(
            c.svg.contains("<title>Rotate:20</title>")
                && c.svg.contains("TranslateY:0.4532")
                && c.svg.contains("<title>op1</title>")
        );
        // The SVG carries its font: every label is glyph outlines, none is left to the viewer.
        assert!(!c.svg.contains("<text") && c.svg.contains("<defs><path id=\"g") && c.svg.contains("<use href=\"#g"));
        assert!(c.svg.matches("<rect").count() >= 1296);
        let img = image::load_from_memory(&c.png).unwrap();
        assert_eq!((img.width(), img.height()), (1000, 900));
        let m = marginals(&t).unwrap();
        assert!(m.svg.contains("Invert") && m.text.contains("op1 marginal"));
    }
}
