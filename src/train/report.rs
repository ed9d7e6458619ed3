//! The evaluation report written beside a model file: Markdown with the
//! held-out figures and a calibration table, and two SVG plots (ROC curve and
//! calibration), drawn directly as SVG text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Evaluation;
use crate::models::file::SplitRecord;
use crate::models::{ModelFile, ModelKind};

/// A rendered report: the Markdown and the two pictures it links to.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub markdown: String,
    pub roc_svg: String,
    pub calibration_svg: String,
}

/// The files of a report for the model at `model_path`, e.g. `payment.json` →
/// `payment.report.md`, `payment.roc.svg`, `payment.calibration.svg`.
pub fn report_paths(model_path: &Path) -> [PathBuf; 3] {
    let stem = model_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model");
    let beside = |suffix: &str| model_path.with_file_name(format!("{stem}.{suffix}"));
    [
        beside("report.md"),
        beside("roc.svg"),
        beside("calibration.svg"),
    ]
}

impl Report {
    /// Renders the report of `file`, evaluated as `evaluation`; `stem` is the
    /// model file's name without extension, used for the picture links.
    pub fn render(file: &ModelFile, evaluation: &Evaluation, stem: &str) -> Report {
        Report {
            markdown: markdown(file, evaluation, stem),
            roc_svg: roc_svg(evaluation),
            calibration_svg: calibration_svg(evaluation),
        }
    }

    /// Writes the three files beside the model at `model_path`.
    pub fn write_beside(&self, model_path: &Path) -> std::io::Result<()> {
        let [markdown, roc, calibration] = report_paths(model_path);
        std::fs::write(markdown, &self.markdown)?;
        std::fs::write(roc, &self.roc_svg)?;
        std::fs::write(calibration, &self.calibration_svg)
    }
}

fn markdown(file: &ModelFile, e: &Evaluation, stem: &str) -> String {
    let t = &file.training;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Model `{}` ({} model)\n",
        file.version,
        file.kind.as_str()
    );
    let _ = writeln!(md, "- Created: {}", file.created_at.to_rfc3339());
    let _ = writeln!(md, "- Trained on: {}", t.source);
    let _ = writeln!(md, "- Label: {}", file.label.description);
    let _ = writeln!(md, "- Algorithm: {}", file.model.algorithm());
    let _ = match (&t.split, file.kind) {
        (SplitRecord::ByTime { test_from }, ModelKind::Payment) => writeln!(
            md,
            "- Decision points: {} to {}; training uses those whose horizon ends before {}, \
             evaluation those from {} on",
            t.from.date_naive(),
            t.to.date_naive(),
            test_from.date_naive(),
            test_from.date_naive()
        ),
        (SplitRecord::ByTime { test_from }, ModelKind::Contact) => writeln!(
            md,
            "- Contact attempts: {} to {}; training uses those before {}, evaluation those \
             from {} on",
            t.from.date_naive(),
            t.to.date_naive(),
            test_from.date_naive(),
            test_from.date_naive()
        ),
        (SplitRecord::Given { description }, _) => writeln!(
            md,
            "- Decision points: {} to {}; split into training and evaluation as given: {}",
            t.from.date_naive(),
            t.to.date_naive(),
            description
        ),
    };
    let _ = writeln!(
        md,
        "- Feature schema: {} (version {})\n",
        file.feature_schema.hash, file.feature_schema.version
    );

    let _ = writeln!(md, "## Held-out evaluation\n");
    let _ = writeln!(md, "| figure | value |\n|---|---|");
    let _ = writeln!(md, "| training rows | {} |", t.train_rows);
    let _ = writeln!(md, "| test rows | {} |", e.rows);
    let _ = writeln!(md, "| base rate (test) | {:.4} |", e.base_rate);
    let _ = writeln!(md, "| AUC | {:.4} |", e.auc);
    let _ = writeln!(md, "| Brier score | {:.4} |", e.brier);
    let _ = writeln!(
        md,
        "| Brier score of the base rate | {:.4} |",
        e.base_rate * (1.0 - e.base_rate)
    );
    let _ = writeln!(md, "| log loss | {:.4} |", e.log_loss);
    let _ = writeln!(md, "| expected calibration error | {:.4} |", e.ece);
    let _ = writeln!(
        md,
        "| lift of the top decile | {:.3} |\n",
        e.top_decile_lift
    );

    let _ = writeln!(
        md,
        "![ROC curve]({stem}.roc.svg) ![Calibration]({stem}.calibration.svg)\n"
    );
    let _ = writeln!(md, "## Calibration\n");
    let _ = writeln!(
        md,
        "| predicted | rows | mean predicted | observed |\n|---|---|---|---|"
    );
    for b in &e.calibration {
        let _ = writeln!(
            md,
            "| {:.1}–{:.1} | {} | {:.3} | {:.3} |",
            b.from, b.to, b.rows, b.mean_predicted, b.observed_rate
        );
    }
    md
}

/// Plot area: 360 × 360 pixels inside a 440 × 440 picture.
const SIZE: f64 = 360.0;
const MARGIN: f64 = 50.0;

fn x(v: f64) -> f64 {
    MARGIN + v.clamp(0.0, 1.0) * SIZE
}

fn y(v: f64) -> f64 {
    MARGIN + (1.0 - v.clamp(0.0, 1.0)) * SIZE
}

/// An empty unit-square plot with a title, axis labels, a grid and the diagonal.
fn frame(title: &str, x_label: &str, y_label: &str) -> String {
    let full = SIZE + 2.0 * MARGIN;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{full}\" height=\"{full}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
        full / 2.0
    );
    for i in 0..=10 {
        let v = f64::from(i) / 10.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e5e5e5\"/>\
             <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e5e5e5\"/>",
            x(v),
            y(0.0),
            x(v),
            y(1.0),
            x(0.0),
            y(v),
            x(1.0),
            y(v)
        );
        if i % 2 == 0 {
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{v:.1}</text>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.1}</text>",
                x(v),
                y(0.0) + 16.0,
                x(0.0) - 6.0,
                y(v) + 4.0
            );
        }
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{MARGIN}\" y=\"{MARGIN}\" width=\"{SIZE}\" height=\"{SIZE}\" fill=\"none\" stroke=\"black\"/>\n\
         <line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\n\
         <text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{y_label}</text>",
        x(0.0),
        y(0.0),
        x(1.0),
        y(1.0),
        full / 2.0,
        full - 10.0,
        full / 2.0
    );
    svg
}

fn roc_svg(e: &Evaluation) -> String {
    let mut svg = frame(
        &format!("ROC curve (AUC {:.3})", e.auc),
        "false positive rate",
        "true positive rate",
    );
    let points: Vec<String> = e
        .roc
        .iter()
        .map(|(fpr, tpr)| format!("{:.1},{:.1}", x(*fpr), y(*tpr)))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>",
        points.join(" ")
    );
    svg.push_str("</svg>\n");
    svg
}

fn calibration_svg(e: &Evaluation) -> String {
    let title = format!("Calibration (ECE {:.3})", e.ece);
    let mut svg = frame(&title, "mean predicted probability", "observed rate");
    let bins: Vec<_> = e.calibration.iter().filter(|b| b.rows > 0).collect();
    let points: Vec<String> = bins
        .iter()
        .map(|b| format!("{:.1},{:.1}", x(b.mean_predicted), y(b.observed_rate)))
        .collect();
    let _ = writeln!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>",
        points.join(" ")
    );
    let largest = bins.iter().map(|b| b.rows).max().unwrap_or(1) as f64;
    for b in &bins {
        // Marker area grows with the bin's share of rows.
        let radius = 3.0 + 5.0 * (b.rows as f64 / largest).sqrt();
        let _ = writeln!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{radius:.1}\" fill=\"#d62728\" fill-opacity=\"0.6\"/>",
            x(b.mean_predicted),
            y(b.observed_rate)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_files_sit_beside_the_model() {
        let [md, roc, cal] = report_paths(Path::new("models/payment.json"));
        assert_eq!(md, Path::new("models/payment.report.md"));
        assert_eq!(roc, Path::new("models/payment.roc.svg"));
        assert_eq!(cal, Path::new("models/payment.calibration.svg"));
    }

    #[test]
    fn plots_are_well_formed_svg_with_every_point() {
        let predicted: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let actual: Vec<bool> = (0..100).map(|i| i % 3 == 0 || i > 70).collect();
        let e = Evaluation::new(&predicted, &actual);
        let roc = roc_svg(&e);
        assert!(roc.starts_with("<svg") && roc.ends_with("</svg>\n"));
        let polyline = roc.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(polyline.matches(',').count(), e.roc.len());
        let calibration = calibration_svg(&e);
        assert_eq!(calibration.matches("<circle").count(), 10);
    }
}
