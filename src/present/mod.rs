//! The presentation layer. Rich output: every report, table and chart renders twice — the plain text of its `Display`
//! for terminals, and HTML (tables, inline SVG charts, PNG image grids) for notebooks through
//! evcxr's display protocol. evcxr keeps only the last output per MIME type of a cell, so a
//! cell's several results are joined into one HTML block ([`Cell`], [`Outputs`]).

use std::fmt;

use base64::Engine;

pub mod chart;
mod html;
pub mod progress;
mod text;

pub use chart::Chart;

/// Something that renders as text and as HTML.
pub trait Rich: fmt::Display {
    /// The HTML block; by default the plain text, preformatted.
    fn html(&self) -> String {
        pre(&self.to_string())
    }

    /// Print both renderings for evcxr (what `evcxr_display` does).
    fn show(&self) {
        print!("{}", evcxr_message(&self.html(), &self.to_string()));
    }

    /// evcxr's display hook: a notebook cell ending in a rich value shows its HTML with the
    /// plain text as fallback. Found because the prelude brings this trait into scope.
    fn evcxr_display(&self) {
        self.show()
    }
}

/// evcxr's protocol: each MIME type's content between markers on stdout. Jupyter shows the
/// richest; the plain text is the fallback (and what `nbconvert --to script` keeps).
pub fn evcxr_message(html: &str, text: &str) -> String {
    format!("EVCXR_BEGIN_CONTENT text/html\n{html}\nEVCXR_END_CONTENT\nEVCXR_BEGIN_CONTENT text/plain\n{text}\nEVCXR_END_CONTENT\n")
}

/// HTML-escape text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Preformatted text.
pub fn pre(s: &str) -> String {
    format!("<pre style=\"margin:0.3em 0\">{}</pre>", escape(s))
}

/// A `<p>`.
pub fn para(s: &str) -> String {
    format!("<p style=\"margin:0.3em 0\">{}</p>", escape(s))
}

/// PNG bytes as a `data:` URI (inline images in HTML and SVG).
pub fn png_data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// PNG bytes as an inline image.
pub fn png_img(png: &[u8], alt: &str) -> String {
    format!("<img alt=\"{}\" src=\"{}\"/>", escape(alt), png_data_uri(png))
}

/// A chart inline: SVG (sharp, searchable), except pixel grids, which are PNG (an SVG of
/// one rectangle per pixel would be megabytes).
pub fn chart_html(c: &Chart) -> String {
    let body = if c.name == "images" {
        png_img(&c.png, &c.text)
    } else {
        c.svg.clone()
    };
    format!("<div style=\"max-width:{}px\">{body}</div>", c.width)
}

/// A table with a header row: HTML for notebooks, aligned columns for terminals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[&str]) -> Self {
        Self {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn with_row(mut self, row: Vec<String>) -> Self {
        self.rows.push(row);
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.columns.len();
        let mut width: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in &self.rows {
            for (i, v) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(v.chars().count());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .take(n)
                .map(|(i, v)| format!("{v:<w$}", w = width[i]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        write!(f, "{}", line(&self.columns))?;
        for r in &self.rows {
            write!(f, "\n{}", line(r))?;
        }
        Ok(())
    }
}

impl Rich for Table {
    fn html(&self) -> String {
        let cell = |tag: &str, v: &str| {
            format!(
                "<{tag} style=\"text-align:left;padding:1px 10px 1px 0\">{}</{tag}>",
                escape(v)
            )
        };
        let head: String = self.columns.iter().map(|c| cell("th", c)).collect();
        let body: String = self
            .rows
            .iter()
            .map(|r| format!("<tr>{}</tr>", r.iter().map(|v| cell("td", v)).collect::<String>()))
            .collect();
        format!("<table style=\"border-collapse:collapse;font-family:monospace;font-size:12px\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    }
}

impl Rich for Chart {
    fn html(&self) -> String {
        chart_html(self)
    }
}

impl fmt::Display for Chart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.text)
    }
}

/// Several results of one cell as one block (evcxr would keep only the last).
#[derive(Debug, Clone, Default)]
pub struct Cell {
    parts: Vec<(String, String)>,
}

impl Cell {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a result (builder style: `Cell::new().with(&a).with(&b)`).
    pub fn with(mut self, r: &dyn Rich) -> Self {
        self.push(r);
        self
    }

    pub fn push(&mut self, r: &dyn Rich) {
        self.parts.push((r.html(), r.to_string()));
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            self.parts.iter().map(|p| p.1.as_str()).collect::<Vec<_>>().join("\n\n")
        )
    }
}

impl Rich for Cell {
    fn html(&self) -> String {
        format!(
            "<div class=\"augwise\">{}</div>",
            self.parts.iter().map(|p| p.0.as_str()).collect::<String>()
        )
    }
}

/// The outputs of several commands, rendered as one block.
pub type Outputs = Cell;

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn tables_render_as_aligned_text_and_escaped_html() {
        let t = Table::new(&["pair", "π"])
            .with_row(vec!["Rotate:20+Invert".into(), "1.5%".into()])
            .with_row(vec!["a<b".into(), "2%".into()]);
        assert_eq!(
            t.to_string(),
            "pair              π\nRotate:20+Invert  1.5%\na<b               2%"
        );
        let h = t.html();
        assert!(
            h.contains("<th") && h.contains(">Rotate:20+Invert</td>") && h.contains("a&lt;b") && !h.contains("a<b")
        );
    }

    #[test]
    fn a_cell_joins_its_results_into_one_html_block_and_one_text() {
        let a = Table::new(&["x"]).with_row(vec!["1".into()]);
        let b = Table::new(&["y"]).with_row(vec!["2".into()]);
        let c = Cell::new().with(&a).with(&b);
        assert_eq!(c.len(), 2);
        let msg = evcxr_message(&c.html(), &c.to_string());
        assert_eq!(msg.matches("EVCXR_BEGIN_CONTENT text/html").count(), 1);
        assert_eq!(msg.matches("EVCXR_BEGIN_CONTENT text/plain").count(), 1);
        assert!(msg.contains(">1</td>") && msg.contains(">2</td>") && msg.contains("x\n1\n\ny\n2"));
    }

    #[test]
    fn png_images_are_inline_base64() {
        let h = png_img(&[0x89, b'P', b'N', b'G'], "grid \"a\"");
        assert!(
            h.starts_with("<img alt=\"grid &quot;a&quot;\" src=\"data:image/png;base64,iVBORw==\""),
            "{h}"
        );
    }
}
