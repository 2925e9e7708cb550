//! SVG text as glyph outlines, so a chart's SVG carries its font (DejaVu Sans, the one the PNG
//! is drawn with) and looks the same in every viewer, browser or not — what matplotlib's
//! `svg.fonttype = "path"` does. Each glyph used is defined once (`<defs>`, font units) and
//! placed with `<use>`; every label keeps its words in a `<title>` for search and screen readers.

use std::collections::BTreeMap;
use std::fmt::Write;

use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve};

/// DejaVu Sans' x-height (1120 of 2048 units): what browsers resolve `ex` to for it.
const X_HEIGHT_EM: f64 = 1120.0 / 2048.0;

/// One `<text …>words</text>` of plotters' SVG.
struct TextElement<'a> {
    attrs: Vec<(&'a str, String)>,
    words: String,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn parse_attrs(tag: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim();
        let after = &rest[eq + 2..];
        let Some(end) = after.find('"') else { break };
        out.push((name, unescape(&after[..end])));
        rest = &after[end + 1..];
    }
    out
}

fn parse(element: &str) -> Option<TextElement<'_>> {
    let open_end = element.find('>')?;
    let attrs = parse_attrs(&element["<text".len()..open_end]);
    let close = element.rfind("</text>")?;
    let words = unescape(element[open_end + 1..close].trim_matches(['\n', '\r']));
    Some(TextElement { attrs, words })
}

impl TextElement<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
    fn num(&self, name: &str) -> f64 {
        self.get(name)
            .and_then(|v| v.trim_end_matches("px").parse().ok())
            .unwrap_or(0.0)
    }
}

/// The fonts and the glyphs defined so far.
struct Glyphs {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
    defined: BTreeMap<(bool, u16), String>,
    defs: String,
}

impl Glyphs {
    fn font(&self, bold: bool) -> &FontRef<'static> {
        if bold {
            &self.bold
        } else {
            &self.regular
        }
    }

    /// The id of glyph `g`'s definition (font units, y up), defining it on first use; `None`
    /// for glyphs without an outline (space).
    fn define(&mut self, bold: bool, g: GlyphId) -> Option<String> {
        if let Some(id) = self.defined.get(&(bold, g.0)) {
            return Some(id.clone());
        }
        let outline = self.font(bold).outline(g)?;
        let mut d = String::new();
        let mut last: Option<(f32, f32)> = None;
        for curve in &outline.curves {
            let (start, end) = match curve {
                OutlineCurve::Line(a, b) | OutlineCurve::Quad(a, _, b) | OutlineCurve::Cubic(a, _, _, b) => {
                    ((a.x, a.y), (b.x, b.y))
                }
            };
            if last != Some(start) {
                if last.is_some() {
                    d.push('Z');
                }
                let _ = write!(d, "M{} {}", start.0, start.1);
            }
            let _ = match curve {
                OutlineCurve::Line(_, b) => write!(d, "L{} {}", b.x, b.y),
                OutlineCurve::Quad(_, c, b) => write!(d, "Q{} {} {} {}", c.x, c.y, b.x, b.y),
                OutlineCurve::Cubic(_, c1, c2, b) => write!(d, "C{} {} {} {} {} {}", c1.x, c1.y, c2.x, c2.y, b.x, b.y),
            };
            last = Some(end);
        }
        if last.is_some() {
            d.push('Z');
        }
        let id = format!("g{}{}", if bold { "b" } else { "" }, g.0);
        let _ = write!(self.defs, "<path id=\"{id}\" d=\"{d}\"/>");
        self.defined.insert((bold, g.0), id.clone());
        Some(id)
    }

    /// The `<g>` drawing one text element as placed glyphs.
    fn render(&mut self, t: &TextElement) -> String {
        let bold = matches!(t.get("font-weight"), Some("bold" | "700" | "800" | "900"));
        let size = t.num("font-size").max(1.0);
        let font = self.font(bold).clone();
        let em = font.units_per_em().unwrap_or(2048.0) as f64;
        let scale = size / em;
        let ids: Vec<GlyphId> = t.words.chars().map(|c| font.glyph_id(c)).collect();
        let mut pens = Vec::with_capacity(ids.len());
        let mut pen = 0.0f64;
        for (i, &g) in ids.iter().enumerate() {
            if i > 0 {
                pen += font.kern_unscaled(ids[i - 1], g) as f64;
            }
            pens.push(pen);
            pen += font.h_advance_unscaled(g) as f64;
        }
        let width = pen * scale;
        let (x, y) = (t.num("x"), t.num("y"));
        let x0 = match t.get("text-anchor") {
            Some("middle") => x - width / 2.0,
            Some("end") => x - width,
            _ => x,
        };
        let shift = match t.get("dy").map(str::trim) {
            Some(dy) if dy.ends_with("em") => dy.trim_end_matches("em").parse::<f64>().unwrap_or(0.0) * size,
            Some(dy) if dy.ends_with("ex") => {
                dy.trim_end_matches("ex").parse::<f64>().unwrap_or(0.0) * X_HEIGHT_EM * size
            }
            Some(dy) => dy.trim_end_matches("px").parse::<f64>().unwrap_or(0.0),
            None => 0.0,
        };
        let baseline = y + shift;
        let mut g = String::from("<g");
        for key in ["fill", "opacity", "transform"] {
            if let Some(v) = t.get(key) {
                let _ = write!(g, " {key}=\"{}\"", crate::present::escape(v));
            }
        }
        let _ = write!(g, "><title>{}</title>", crate::present::escape(&t.words));
        for (&id, &p) in ids.iter().zip(&pens) {
            if let Some(href) = self.define(bold, id) {
                let _ = write!(
                    g,
                    "<use href=\"#{href}\" transform=\"translate({:.2} {:.2}) scale({scale:.6} {:.6})\"/>",
                    x0 + p * scale,
                    baseline,
                    -scale
                );
            }
        }
        g.push_str("</g>");
        g
    }
}

/// `svg` with every `<text>` replaced by glyph outlines. Text that cannot be parsed is left
/// as it was (a viewer still shows it, in its own sans-serif).
pub fn outline_text(svg: &str) -> String {
    let (Ok(regular), Ok(bold)) = (
        FontRef::try_from_slice(dejavu::sans::regular()),
        FontRef::try_from_slice(dejavu::sans::bold()),
    ) else {
        return svg.to_owned();
    };
    let mut glyphs = Glyphs {
        regular,
        bold,
        defined: BTreeMap::new(),
        defs: String::new(),
    };
    let mut body = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        body.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("</text>").map(|e| e + "</text>".len()) else {
            rest = &rest[start..];
            break;
        };
        let element = &rest[start..start + len];
        match parse(element) {
            Some(t) => body.push_str(&glyphs.render(&t)),
            None => body.push_str(element),
        }
        rest = &rest[start + len..];
    }
    body.push_str(rest);
    // The definitions go right after the opening <svg …> tag.
    match body.find("<svg").and_then(|s| body[s..].find('>').map(|e| s + e + 1)) {
        Some(at) if !glyphs.defs.is_empty() => format!("{}<defs>{}</defs>{}", &body[..at], glyphs.defs, &body[at..]),
        _ => body,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    const SVG: &str = "<svg width=\"200\" height=\"50\" viewBox=\"0 0 200 50\" xmlns=\"http://www.w3.org/2000/svg\">\n\
        <text x=\"100\" y=\"10\" dy=\"0.76em\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"16\" opacity=\"1\" fill=\"#000000\">\nA &amp; B\n</text>\n\
        <text x=\"10\" y=\"40\" transform=\"rotate(90, 10, 40)\" font-family=\"sans-serif\" font-size=\"10\" fill=\"#FF0000\">\nAA\n</text>\n</svg>";

    #[test]
    fn text_becomes_placed_glyphs_defined_once() {
        let out = outline_text(SVG);
        assert!(!out.contains("<text"), "{out}");
        assert!(out.contains("<title>A &amp; B</title>") && out.contains("<title>AA</title>"));
        // `A` is defined once and used three times; the space has no outline; `&` and `B` once each.
        assert_eq!(out.matches("<path id=").count(), 3, "{out}");
        assert_eq!(out.matches("<use ").count(), 5);
        assert!(out.contains("transform=\"rotate(90, 10, 40)\"") && out.contains("fill=\"#FF0000\""));
        assert!(out.find("<defs>").unwrap() < out.find("<g").unwrap());
        // Centred on x = 100: the first glyph starts left of it by half the advance width.
        let first_x: f64 = out
            .split("translate(")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(first_x > 70.0 && first_x < 90.0, "{first_x}");
        // Baseline 0.76 em below y = 10.
        let baseline: f64 = out
            .split("translate(")
            .nth(1)
            .unwrap()
            .split([' ', ')'])
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert!((baseline - (10.0 + 0.76 * 16.0)).abs() < 1e-6, "{baseline}");
    }

    #[test]
    fn svg_without_text_is_unchanged() {
        let s = "<svg width=\"2\" height=\"2\"><rect x=\"0\" y=\"0\" width=\"1\" height=\"1\"/></svg>";
        assert_eq!(outline_text(s), s);
    }
}
