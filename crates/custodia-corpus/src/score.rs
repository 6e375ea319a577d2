//! Scoring a detector's findings against a corpus's ground truth.
//!
//! A finding counts as a true positive when its byte range overlaps a truth span of the
//! same type in the same file. Overlap rather than exact bounds, because where a value
//! ends is a matter of convention (`+86 ` before a mobile, the quotes around a CSV cell)
//! and not what a reader of the scan report cares about; the type must match, because
//! calling a resident id a bank card is a wrong answer. Each truth span is matched at most
//! once, so a detector that reports one value twice gets one true and one false positive.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A typed byte range in one corpus file: a planted value or a finding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    /// The file, relative to the corpus directory, `/`-separated.
    pub path: String,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// A PII type id (`cn_mobile`, …).
    #[serde(rename = "type")]
    pub ty: String,
}

/// The precision/recall targets (both must be met) a detector of `ty` is held to.
pub fn target(ty: &str) -> Option<(f64, f64)> {
    match ty {
        "cn_resident_id" | "cn_mobile" | "bank_card" | "uscc" | "email" | "ipv4" => {
            Some((0.995, 0.995))
        }
        "person_name" => Some((0.9, 0.9)),
        "address" => Some((0.85, 0.85)),
        _ => None,
    }
}

/// Counts for one PII type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeScore {
    /// Truth spans of the type.
    pub truth: u64,
    /// Findings of the type.
    pub found: u64,
    /// Findings matched to a truth span.
    pub tp: u64,
}

impl TypeScore {
    /// Findings that matched nothing.
    pub fn fp(&self) -> u64 {
        self.found - self.tp
    }

    /// Truth spans no finding matched.
    pub fn fn_(&self) -> u64 {
        self.truth - self.tp
    }

    /// `tp / found`; `None` when nothing was found.
    pub fn precision(&self) -> Option<f64> {
        (self.found > 0).then(|| self.tp as f64 / self.found as f64)
    }

    /// `tp / truth`; `None` when there was nothing to find.
    pub fn recall(&self) -> Option<f64> {
        (self.truth > 0).then(|| self.tp as f64 / self.truth as f64)
    }

    /// Harmonic mean of precision and recall; `None` if either is undefined, `0` if both
    /// are zero.
    pub fn f1(&self) -> Option<f64> {
        let (p, r) = (self.precision()?, self.recall()?);
        Some(if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        })
    }

    /// Whether the type meets its target, if it has one. An undefined precision (no
    /// findings) counts as met only when there was nothing to find.
    pub fn meets(&self, (min_p, min_r): (f64, f64)) -> bool {
        let p_ok = self.precision().is_none_or(|p| p >= min_p);
        let r_ok = self.recall().is_none_or(|r| r >= min_r);
        p_ok && r_ok
    }
}

/// Per-type counts, in type-id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Score {
    pub by_type: BTreeMap<String, TypeScore>,
}

impl Score {
    /// Counts over all types together (micro average).
    pub fn total(&self) -> TypeScore {
        let mut t = TypeScore::default();
        for s in self.by_type.values() {
            t.truth += s.truth;
            t.found += s.found;
            t.tp += s.tp;
        }
        t
    }

    /// The types that have a target and miss it.
    pub fn missed_targets(&self) -> Vec<&str> {
        self.by_type
            .iter()
            .filter(|(ty, s)| target(ty).is_some_and(|t| !s.meets(t)))
            .map(|(ty, _)| ty.as_str())
            .collect()
    }
}

fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.4}"))
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<18} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>7} {:>7}  target",
            "type", "truth", "found", "tp", "fp", "fn", "precision", "recall", "f1"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, ty: &str, s: &TypeScore, flag: String| {
            writeln!(
                f,
                "{:<18} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>7} {:>7}  {}",
                ty,
                s.truth,
                s.found,
                s.tp,
                s.fp(),
                s.fn_(),
                ratio(s.precision()),
                ratio(s.recall()),
                ratio(s.f1()),
                flag
            )
        };
        for (ty, s) in &self.by_type {
            let flag = match target(ty) {
                Some(t) if s.meets(t) => format!("{}/{} ok", t.0, t.1),
                Some(t) => format!("{}/{} MISSED", t.0, t.1),
                None => String::new(),
            };
            row(f, ty, s, flag)?;
        }
        row(f, "(all)", &self.total(), String::new())
    }
}

/// Scores `found` against `truth` (see the module docs for the matching rule).
pub fn score(truth: &[Span], found: &[Span]) -> Score {
    type Key<'a> = (&'a str, &'a str);
    let mut truth_groups: BTreeMap<Key, Vec<(u64, u64)>> = BTreeMap::new();
    for s in truth {
        truth_groups
            .entry((s.path.as_str(), s.ty.as_str()))
            .or_default()
            .push((s.start, s.end));
    }
    let mut found_groups: BTreeMap<Key, Vec<(u64, u64)>> = BTreeMap::new();
    for s in found {
        found_groups
            .entry((s.path.as_str(), s.ty.as_str()))
            .or_default()
            .push((s.start, s.end));
    }
    let mut out = Score::default();
    for (&(_, ty), spans) in &truth_groups {
        out.by_type.entry(ty.to_owned()).or_default().truth += spans.len() as u64;
    }
    for (key, findings) in &mut found_groups {
        let entry = out.by_type.entry(key.1.to_owned()).or_default();
        entry.found += findings.len() as u64;
        if let Some(spans) = truth_groups.get_mut(key) {
            entry.tp += match_overlaps(spans, findings);
        }
    }
    out
}

/// Greedy matching of findings to truth spans by overlap: findings in order of their
/// end, each taking the overlapping unmatched truth span that ends first (the
/// earliest-deadline rule, which leaves the long spans for later findings). Returns the
/// match count.
fn match_overlaps(truth: &mut [(u64, u64)], findings: &mut [(u64, u64)]) -> u64 {
    truth.sort_unstable();
    findings.sort_unstable_by_key(|&(s, e)| (e, s));
    // max_end[i]: the largest end among truth[..=i]; nondecreasing, so binary-searchable
    // even when truth spans nest or overlap.
    let mut max_end = Vec::with_capacity(truth.len());
    let mut m = 0;
    for &(_, end) in truth.iter() {
        m = m.max(end);
        max_end.push(m);
    }
    let mut used = vec![false; truth.len()];
    let mut tp = 0;
    for &(fs, fe) in findings.iter() {
        // A zero-width finding stands for the byte at its position.
        let fe = fe.max(fs + 1);
        // Spans before `first` all end at or before the finding's start.
        let first = max_end.partition_point(|&e| e <= fs);
        let hit = (first..truth.len())
            .take_while(|&i| truth[i].0 < fe)
            .filter(|&i| !used[i] && truth[i].1 > fs)
            .min_by_key(|&i| truth[i].1);
        if let Some(i) = hit {
            used[i] = true;
            tp += 1;
        }
    }
    tp
}

fn invalid(path: &Path, line: usize, what: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}:{line}: {what}", path.display()),
    )
}

/// Reads a `truth.jsonl` written by [`crate::generate`].
pub fn read_truth(path: &Path) -> io::Result<Vec<Span>> {
    let mut out = Vec::new();
    for (i, line) in BufReader::new(File::open(path)?).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let span: Span = serde_json::from_str(&line).map_err(|e| invalid(path, i + 1, e))?;
        out.push(span);
    }
    Ok(out)
}

/// One line of `custodia scan --format jsonl`; the other keys (line, column, confidence,
/// masked, field) are not needed for scoring.
#[derive(Deserialize)]
struct FindingLine {
    path: String,
    start: u64,
    end: u64,
    #[serde(rename = "type")]
    ty: String,
}

/// Reads a scanner's jsonl findings and makes their paths relative to `corpus_dir`, the
/// directory that was scanned, so that they compare with the truth's paths. A path
/// outside `corpus_dir` is kept as written (it can only be a false positive).
pub fn read_findings_jsonl(path: &Path, corpus_dir: &Path) -> io::Result<Vec<Span>> {
    let base = Bases::new(corpus_dir);
    let mut out = Vec::new();
    for (i, line) in BufReader::new(File::open(path)?).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let f: FindingLine = serde_json::from_str(&line).map_err(|e| invalid(path, i + 1, e))?;
        if f.end < f.start {
            return Err(invalid(path, i + 1, "end before start"));
        }
        out.push(Span {
            path: base.relative(&f.path),
            start: f.start,
            end: f.end,
            ty: f.ty,
        });
    }
    Ok(out)
}

/// The corpus directory as given, lexically cleaned, and canonicalized.
struct Bases {
    lexical: PathBuf,
    canonical: Option<PathBuf>,
}

/// `p` without `.` components and with `a/..` folded where possible.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn slashed(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl Bases {
    fn new(corpus_dir: &Path) -> Bases {
        Bases {
            lexical: clean(corpus_dir),
            canonical: corpus_dir.canonicalize().ok(),
        }
    }

    fn relative(&self, raw: &str) -> String {
        let p = clean(Path::new(raw));
        // As scanned: `custodia scan corpus` reports `corpus/…`, an absolute dir reports
        // absolute paths.
        if let Ok(rest) = p.strip_prefix(&self.lexical) {
            if !self.lexical.as_os_str().is_empty() {
                return slashed(rest);
            }
        }
        if let Some(canonical) = &self.canonical {
            if let Ok(c) = p.canonicalize() {
                if let Ok(rest) = c.strip_prefix(canonical) {
                    return slashed(rest);
                }
            }
            // Relative to the corpus directory itself (a scan run from inside it).
            if p.is_relative() && canonical.join(&p).is_file() {
                return slashed(&p);
            }
        }
        slashed(&p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(path: &str, start: u64, end: u64, ty: &str) -> Span {
        Span {
            path: path.to_owned(),
            start,
            end,
            ty: ty.to_owned(),
        }
    }

    #[test]
    fn overlap_matching_counts_each_truth_once() {
        let truth = vec![
            span("a.txt", 10, 21, "cn_mobile"),
            span("a.txt", 30, 48, "cn_resident_id"),
            span("a.txt", 60, 79, "bank_card"),
            span("b.txt", 0, 11, "cn_mobile"),
            span("b.txt", 20, 26, "person_name"),
        ];
        let found = vec![
            // Exact, and a duplicate of it: one tp, one fp.
            span("a.txt", 10, 21, "cn_mobile"),
            span("a.txt", 12, 21, "cn_mobile"),
            // Partial overlap with the id: tp.
            span("a.txt", 26, 40, "cn_resident_id"),
            // Right place, wrong type: fp for bank_card's competitor, fn for bank_card.
            span("a.txt", 60, 79, "cn_resident_id"),
            // Right type, other file: fp.
            span("c.txt", 0, 11, "cn_mobile"),
            // Touching but not overlapping (end exclusive): fp.
            span("b.txt", 11, 15, "cn_mobile"),
            // A type not in the truth at all.
            span("b.txt", 30, 36, "postal_code"),
        ];
        let s = score(&truth, &found);
        let m = &s.by_type["cn_mobile"];
        assert_eq!((m.truth, m.found, m.tp, m.fp(), m.fn_()), (2, 4, 1, 3, 1));
        let id = &s.by_type["cn_resident_id"];
        assert_eq!(
            (id.truth, id.found, id.tp, id.fp(), id.fn_()),
            (1, 2, 1, 1, 0)
        );
        let card = &s.by_type["bank_card"];
        assert_eq!((card.truth, card.found, card.tp), (1, 0, 0));
        assert_eq!(card.precision(), None);
        assert_eq!(card.recall(), Some(0.0));
        let name = &s.by_type["person_name"];
        assert_eq!((name.truth, name.found, name.tp), (1, 0, 0));
        let postal = &s.by_type["postal_code"];
        assert_eq!((postal.truth, postal.found, postal.tp), (0, 1, 0));
        assert_eq!(postal.recall(), None);
        let total = s.total();
        assert_eq!((total.truth, total.found, total.tp), (5, 7, 2));
        assert_eq!(m.precision(), Some(0.25));
        assert_eq!(m.recall(), Some(0.5));
        let f1 = m.f1().unwrap();
        assert!((f1 - 2.0 * 0.25 * 0.5 / 0.75).abs() < 1e-12);
        let missed = s.missed_targets();
        assert!(missed.contains(&"cn_mobile") && missed.contains(&"bank_card"));
        assert!(!missed.contains(&"postal_code"));
    }

    #[test]
    fn one_finding_spanning_two_values_matches_one() {
        let truth = vec![span("a", 0, 5, "email"), span("a", 6, 10, "email")];
        let found = vec![span("a", 0, 10, "email")];
        let s = score(&truth, &found);
        assert_eq!(s.by_type["email"].tp, 1);
        // Two findings, one per value, match both, whatever order they come in.
        let found = vec![span("a", 7, 8, "email"), span("a", 2, 3, "email")];
        assert_eq!(score(&truth, &found).by_type["email"].tp, 2);
        // A long truth span covering short later ones does not hide them.
        let truth = vec![span("a", 0, 100, "address"), span("a", 10, 12, "address")];
        let found = vec![span("a", 11, 12, "address"), span("a", 50, 60, "address")];
        assert_eq!(score(&truth, &found).by_type["address"].tp, 2);
    }

    #[test]
    fn display_flags_targets() {
        let truth = vec![
            span("a", 0, 11, "cn_mobile"),
            span("a", 20, 22, "person_name"),
        ];
        let found = vec![span("a", 0, 11, "cn_mobile")];
        let table = score(&truth, &found).to_string();
        assert!(table.contains("precision") && table.contains("recall"));
        let mobile = table.lines().find(|l| l.starts_with("cn_mobile")).unwrap();
        assert!(mobile.ends_with("0.995/0.995 ok"), "{mobile}");
        let name = table
            .lines()
            .find(|l| l.starts_with("person_name"))
            .unwrap();
        assert!(name.ends_with("0.9/0.9 MISSED"), "{name}");
        assert!(table.lines().last().unwrap().starts_with("(all)"));
    }

    #[test]
    fn finding_paths_are_made_relative_to_the_corpus() {
        let dir =
            std::env::temp_dir().join(format!("custodia-corpus-paths-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(dir.join("logs/a.log"), "x").unwrap();
        let abs = dir.join("logs/a.log");
        let findings = dir.join("findings.jsonl");
        let lines = [
            format!(
                r#"{{"path":{},"line":1,"column":1,"start":0,"end":1,"type":"email","confidence":0.9,"masked":"*"}}"#,
                serde_json::to_string(&abs.to_string_lossy()).unwrap()
            ),
            r#"{"path":"logs/a.log","start":0,"end":1,"type":"email","field":"x"}"#.to_owned(),
            format!(
                r#"{{"path":{},"start":0,"end":1,"type":"email"}}"#,
                serde_json::to_string(&format!("{}/./logs/a.log", dir.display())).unwrap()
            ),
            String::new(),
        ];
        std::fs::write(&findings, lines.join("\n")).unwrap();
        let spans = read_findings_jsonl(&findings, &dir).unwrap();
        assert_eq!(spans.len(), 3);
        assert!(spans.iter().all(|s| s.path == "logs/a.log"), "{spans:?}");
        std::fs::write(&findings, "{\"path\":\"a\"}\n").unwrap();
        assert!(read_findings_jsonl(&findings, &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
