//! Output: JSON lines (one finding per line), a terminal table, and a self-contained HTML
//! report for a compliance officer. Everything shown is masked or a count.

use crate::{level_of, Event, Summary};
use custodia_core::{Level, PiiType};
use std::fmt::Write as _;
use std::io::{self, Write};

/// Output formats of `custodia scan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Jsonl,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "jsonl" => Ok(Format::Jsonl),
            "html" => Ok(Format::Html),
            _ => Err(format!("unknown format {s:?} (table, jsonl or html)")),
        }
    }
}

/// Writes findings as they arrive (JSON lines) and keeps the summary for the end.
pub struct Writer<W: Write> {
    out: W,
    format: Format,
    pub summary: Summary,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, format: Format) -> Self {
        Writer {
            out,
            format,
            summary: Summary::default(),
        }
    }

    pub fn event(&mut self, e: Event) -> io::Result<()> {
        self.summary.add(&e);
        match (self.format, e) {
            (Format::Jsonl, Event::Rendered { jsonl, .. }) => {
                self.out.write_all(&jsonl)?;
                crate::recycle(jsonl);
            }
            (Format::Jsonl, Event::Findings(fs)) => {
                let mut buf = Vec::with_capacity(fs.len() * 160);
                let mut path = Vec::new();
                for f in &fs {
                    path.clear();
                    crate::json_str(&mut path, &f.path);
                    crate::Line::of(f).write(&mut buf, &path);
                }
                self.out.write_all(&buf)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes the table or HTML report (JSON lines were written as they came).
    pub fn finish(mut self, title: &str) -> io::Result<Summary> {
        match self.format {
            Format::Jsonl => {}
            Format::Table => self.out.write_all(table(&self.summary).as_bytes())?,
            Format::Html => self.out.write_all(html(&self.summary, title).as_bytes())?,
        }
        self.out.flush()?;
        Ok(self.summary)
    }
}

fn type_of(id: &str) -> Option<PiiType> {
    PiiType::ALL.iter().copied().find(|t| t.id() == id)
}

fn level_str(l: Level) -> &'static str {
    match l {
        Level::C1 => "C1",
        Level::C2 => "C2",
        Level::C3 => "C3",
    }
}

/// The highest level among a source's finding types.
fn worst_level(types: &std::collections::BTreeMap<&'static str, u64>) -> Level {
    types
        .keys()
        .filter_map(|t| type_of(t))
        .map(level_of)
        .max_by_key(|l| l.jrt0197())
        .unwrap_or(Level::C1)
}

/// Terminal columns a string takes (CJK and full-width characters take two).
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

/// `s` padded with spaces to `w` terminal columns.
fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

/// Bytes for people: B, KB, MB, GB.
pub fn human_bytes(b: u64) -> String {
    match b {
        0..=9_999 => format!("{b} B"),
        10_000..=9_999_999 => format!("{:.1} KB", b as f64 / 1e3),
        10_000_000..=9_999_999_999 => format!("{:.1} MB", b as f64 / 1e6),
        _ => format!("{:.2} GB", b as f64 / 1e9),
    }
}

/// A plain-text summary for a terminal.
pub fn table(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Scanned {} source(s), {}: {} finding(s).",
        s.sources,
        human_bytes(s.bytes),
        s.findings
    );
    if !s.by_type.is_empty() {
        let _ = writeln!(o, "\n{:<18} {:>5} {:>10}", "TYPE", "LEVEL", "FINDINGS");
        let mut types: Vec<_> = s.by_type.iter().collect();
        types.sort_by(|a, b| b.1.cmp(a.1));
        for (t, n) in types {
            let l = type_of(t).map_or("", |t| level_str(level_of(t)));
            let _ = writeln!(o, "{t:<18} {l:>5} {n:>10}");
        }
        let _ = writeln!(
            o,
            "\n{:<60} {:>5} {:>9}  TYPES",
            "SOURCE", "LEVEL", "FINDINGS"
        );
        for (path, n) in s.worst_sources() {
            let types = &s.by_source[path];
            let list: Vec<String> = types.iter().map(|(t, n)| format!("{t}×{n}")).collect();
            let _ = writeln!(
                o,
                "{} {:>5} {:>9}  {}",
                pad(path, 60),
                level_str(worst_level(types)),
                n,
                list.join(" ")
            );
        }
    }
    if !s.columns.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<40} {:<18} {:>7} {:>7} {:>5}",
            "TABLE.COLUMN", "TYPE", "SAMPLED", "MATCHED", "LEVEL"
        );
        for c in &s.columns {
            let _ = writeln!(
                o,
                "{} {:<18} {:>7} {:>6.1}% {:>5}",
                pad(&format!("{}.{}", c.table, c.column), 40),
                c.ty.map_or("-", |t| t.id()),
                c.sampled,
                c.share * 100.0,
                level_str(c.level)
            );
        }
    }
    if !s.skipped.is_empty() {
        let _ = writeln!(o, "\nSkipped ({}):", s.skipped.len());
        for (p, why) in &s.skipped {
            let _ = writeln!(o, "  {p}: {why}");
        }
    }
    o
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A self-contained HTML report: no scripts, no external resources; the chart is inline SVG.
pub fn html(s: &Summary, title: &str) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Custodia scan: {t}</title><style>\
         body{{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d2733;padding:0 1em}}\
         h1{{font-size:1.5em}}h2{{font-size:1.15em;margin-top:2em;border-bottom:1px solid #d0d7de}}\
         table{{border-collapse:collapse;width:100%}}th,td{{padding:.3em .6em;border-bottom:1px solid #eaeef2;text-align:left}}\
         td.n{{text-align:right;font-variant-numeric:tabular-nums}}\
         .cards{{display:flex;gap:1em;flex-wrap:wrap}}.card{{border:1px solid #d0d7de;border-radius:6px;padding:.8em 1.2em}}\
         .card b{{display:block;font-size:1.6em}}.C3{{color:#fff;background:#8b0000}}.C2{{background:#ffd8a8}}.C1{{background:#e7f5ff}}\
         .lvl{{padding:0 .4em;border-radius:3px;font-weight:600}}\
         </style></head><body><h1>Personal data found: {t}</h1>",
        t = esc(title)
    );
    let c2plus: u64 = s
        .by_type
        .iter()
        .filter(|(t, _)| type_of(t).is_some_and(|t| level_of(t) != Level::C1))
        .map(|(_, n)| n)
        .sum();
    let _ = write!(
        o,
        "<div class=\"cards\"><div class=\"card\"><b>{}</b>findings</div>\
         <div class=\"card\"><b>{}</b>identifying (C2/C3)</div>\
         <div class=\"card\"><b>{}</b>sources with findings of {} scanned</div>\
         <div class=\"card\"><b>{}</b>scanned</div></div>",
        s.findings,
        c2plus,
        s.by_source.len(),
        s.sources,
        human_bytes(s.bytes)
    );
    // Summary by type, with the chart.
    let mut types: Vec<(&&str, &u64)> = s.by_type.iter().collect();
    types.sort_by(|a, b| b.1.cmp(a.1));
    if !types.is_empty() {
        let max = *types[0].1 as f64;
        let (bar_h, label_w, w) = (22.0, 150.0, 700.0);
        let h = bar_h * types.len() as f64 + 10.0;
        let _ = write!(
            o,
            "<h2>Findings per type</h2><svg role=\"img\" aria-label=\"findings per type\" \
             width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
        );
        for (i, (t, n)) in types.iter().enumerate() {
            let y = i as f64 * bar_h + 5.0;
            let bw = ((**n as f64 / max) * (w - label_w - 80.0)).max(1.0);
            let color = match type_of(t).map(level_of) {
                Some(Level::C1) => "#74c0fc",
                _ => "#f08c00",
            };
            let _ = write!(
                o,
                "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{t}</text>\
                 <rect x=\"{label_w}\" y=\"{y}\" width=\"{bw:.1}\" height=\"{bh}\" fill=\"{color}\"/>\
                 <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"12\">{n}</text>",
                ty = y + 14.0,
                bh = bar_h - 6.0,
                tx = label_w + bw + 6.0,
                t = esc(t)
            );
        }
        o.push_str("</svg><table><tr><th>Type</th><th>Level</th><th>Findings</th></tr>");
        for (t, n) in &types {
            let l = type_of(t).map_or("", |t| level_str(level_of(t)));
            let _ = write!(
                o,
                "<tr><td>{}</td><td><span class=\"lvl {l}\">{l}</span></td><td class=\"n\">{n}</td></tr>",
                esc(t)
            );
        }
        o.push_str("</table>");
    }
    let worst = s.worst_sources();
    if !worst.is_empty() {
        o.push_str(
            "<h2>Worst sources first</h2><table><tr><th>Source</th><th>Level</th>\
             <th>Findings</th><th>Types</th></tr>",
        );
        for (path, n) in worst {
            let types = &s.by_source[path];
            let l = level_str(worst_level(types));
            let list: Vec<String> = types.iter().map(|(t, n)| format!("{t} × {n}")).collect();
            let _ = write!(
                o,
                "<tr><td>{}</td><td><span class=\"lvl {l}\">{l}</span></td><td class=\"n\">{n}</td><td>{}</td></tr>",
                esc(path),
                esc(&list.join(", "))
            );
        }
        o.push_str("</table>");
    }
    if !s.columns.is_empty() {
        o.push_str(
            "<h2>Database columns</h2><table><tr><th>Table</th><th>Column</th><th>Type</th>\
             <th>Sampled</th><th>Matched</th><th>Suggested level</th></tr>",
        );
        let mut cols = s.columns.clone();
        cols.sort_by(|a, b| {
            b.level
                .jrt0197()
                .cmp(&a.level.jrt0197())
                .then(b.share.total_cmp(&a.share))
        });
        for c in &cols {
            let l = level_str(c.level);
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}%</td>\
                 <td><span class=\"lvl {l}\">{l}</span></td></tr>",
                esc(&c.table),
                esc(&c.column),
                c.ty.map_or("-", |t| t.id()),
                c.sampled,
                c.share * 100.0
            );
        }
        o.push_str("</table>");
    }
    if !s.skipped.is_empty() {
        o.push_str("<h2>Skipped</h2><table><tr><th>Source</th><th>Why</th></tr>");
        for (p, why) in &s.skipped {
            let _ = write!(o, "<tr><td>{}</td><td>{}</td></tr>", esc(p), esc(why));
        }
        o.push_str("</table>");
    }
    o.push_str(
        "<p><small>Values are never shown: counts only. Levels follow JR/T 0171-2020 \
         (C3 authentication data, C2 identifying data, C1 internal data).</small></p></body></html>\n",
    );
    o
}
