//! A generated corpus is deterministic, its truth is exact and complete for the strict
//! types, and its hard negatives are really negative.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use custodia_core::PiiType;
use custodia_corpus::{
    generate, read_truth, score, CorpusConfig, CorpusSummary, FileKind, Span, NEGATIVES_FILE,
    TRUTH_FILE,
};
use custodia_detect::{fold_width, normalize, validate};

const MB: u64 = 1 << 20;

fn scratch(name: &str) -> PathBuf {
    // Under target/tmp, so that the corpora do not pile up in /tmp: each run starts by
    // removing what the last one left.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("custodia-corpus-{name}"));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// The 1 MB corpus shared by the tests (seed 42, files of about 64 KiB).
fn corpus() -> &'static (PathBuf, CorpusSummary) {
    static CORPUS: OnceLock<(PathBuf, CorpusSummary)> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = scratch("shared");
        let cfg = CorpusConfig {
            seed: 42,
            total_bytes: MB,
            file_bytes: 64 << 10,
        };
        let summary = generate(&cfg, &dir).expect("generate");
        (dir, summary)
    })
}

fn file_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

struct Negative {
    path: String,
    start: usize,
    end: usize,
    kind: String,
}

fn negatives(dir: &Path) -> Vec<Negative> {
    fs::read_to_string(dir.join(NEGATIVES_FILE))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Negative {
                path: v["path"].as_str().unwrap().to_owned(),
                start: v["start"].as_u64().unwrap() as usize,
                end: v["end"].as_u64().unwrap() as usize,
                kind: v["kind"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = CorpusConfig {
        seed: 7,
        total_bytes: 300 << 10,
        file_bytes: 50 << 10,
    };
    let (a, b, c) = (scratch("det-a"), scratch("det-b"), scratch("det-c"));
    let sa = generate(&cfg, &a).unwrap();
    let sb = generate(&cfg, &b).unwrap();
    generate(
        &CorpusConfig {
            seed: 8,
            ..cfg.clone()
        },
        &c,
    )
    .unwrap();
    assert_eq!(sa, sb);
    let (fa, fb, fc) = (file_bytes(&a), file_bytes(&b), file_bytes(&c));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (path, bytes) in &fa {
        assert!(bytes == &fb[path], "{path} differs between two runs");
    }
    assert_ne!(fa, fc, "another seed gives another corpus");
    for d in [a, b, c] {
        fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn size_layout_and_coverage() {
    let (dir, summary) = corpus();
    // 16 files of about 64 KiB, each at most one record past its share.
    assert_eq!(summary.files.len(), 16);
    assert!(summary.total_bytes >= MB && summary.total_bytes < MB + 16 * 4096);
    let kinds: BTreeSet<FileKind> = summary.files.iter().map(|f| f.kind).collect();
    assert_eq!(kinds.len(), FileKind::ALL.len());
    for f in &summary.files {
        let on_disk = fs::metadata(dir.join(&f.path)).unwrap().len();
        assert_eq!(on_disk, f.bytes, "{}", f.path);
        assert!(f.path.ends_with(f.kind.extension()));
    }
    let truth = read_truth(&dir.join(TRUTH_FILE)).unwrap();
    assert_eq!(truth.len() as u64, summary.planted.values().sum::<u64>());
    let minimum: [(&str, u64); 14] = [
        ("cn_resident_id", 500),
        ("cn_mobile", 1000),
        ("bank_card", 300),
        ("uscc", 50),
        ("email", 300),
        ("ipv4", 300),
        ("person_name", 1000),
        ("address", 300),
        ("cn_landline", 50),
        ("ipv6", 30),
        ("cn_passport", 20),
        ("cn_license_plate", 20),
        ("postal_code", 50),
        ("date_of_birth", 20),
    ];
    for (ty, min) in minimum {
        let n = summary.planted.get(ty).copied().unwrap_or(0);
        assert!(n >= min, "{ty}: {n} planted, want at least {min}");
    }
    for kind in [
        "resident_id_bad_check",
        "resident_id_bad_date",
        "card_bad_luhn",
        "mobile_bad_prefix",
        "order_number",
        "serial_with_resident_id",
        "serial_with_mobile",
        "compact_timestamp",
        "unix_millis",
        "ticket_number",
        "glued_mobile",
        "version",
        "masked_mobile",
        "masked_resident_id",
    ] {
        let n = summary.hard_negatives.get(kind).copied().unwrap_or(0);
        assert!(n >= 10, "hard negative {kind}: only {n}");
    }
}

#[test]
fn every_truth_span_is_exact_and_valid() {
    let (dir, _) = corpus();
    let files = file_bytes(dir);
    let truth = read_truth(&dir.join(TRUTH_FILE)).unwrap();
    for (i, s) in truth.iter().enumerate() {
        let text = std::str::from_utf8(&files[&s.path]).expect("corpus files are UTF-8");
        let (start, end) = (s.start as usize, s.end as usize);
        assert!(start < end && end <= text.len(), "truth line {i}");
        assert!(
            text.is_char_boundary(start) && text.is_char_boundary(end),
            "truth line {i} cuts a character"
        );
        let value = &text[start..end];
        let ty = PiiType::from_id(&s.ty).expect("known type id");
        assert!(
            normalize(ty, value).is_ok(),
            "truth line {i} ({ty}) does not validate"
        );
        // No surrounding whitespace or punctuation inside the span.
        assert_eq!(value.trim(), value, "truth line {i}");
        assert!(!value.starts_with(['"', ',', '（']), "truth line {i}");
        assert!(
            !value.ends_with(['"', ',', '。', '，', '）', '.']),
            "truth line {i}"
        );
    }
    // The strict types, through the named validators the brief promises.
    for s in &truth {
        let v = std::str::from_utf8(&files[&s.path][s.start as usize..s.end as usize]).unwrap();
        let ok = match s.ty.as_str() {
            "cn_resident_id" => validate::resident_id(v).is_ok(),
            "cn_mobile" => validate::mobile(v).is_ok(),
            "bank_card" => validate::bank_card(v).is_ok(),
            "uscc" => validate::uscc(v).is_ok(),
            "email" => validate::email(v).is_ok(),
            "ipv4" => validate::ipv4(v).is_ok(),
            _ => true,
        };
        assert!(ok, "{} span does not validate", s.ty);
    }
    // Spans of one file do not overlap each other.
    let mut by_file: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for s in &truth {
        by_file.entry(&s.path).or_default().push((s.start, s.end));
    }
    for (path, mut spans) in by_file {
        spans.sort_unstable();
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlapping truth spans in {path}");
        }
    }
}

#[test]
fn surface_forms_are_varied() {
    let (dir, _) = corpus();
    let files = file_bytes(dir);
    let truth = read_truth(&dir.join(TRUTH_FILE)).unwrap();
    let values = |ty: &str| -> Vec<String> {
        truth
            .iter()
            .filter(|s| s.ty == ty)
            .map(|s| {
                String::from_utf8(files[&s.path][s.start as usize..s.end as usize].to_vec())
                    .unwrap()
            })
            .collect()
    };
    let ids = values("cn_resident_id");
    assert!(ids.iter().any(|v| v.ends_with('x')), "lowercase x");
    assert!(ids.iter().any(|v| v.contains(' ')), "spaced id");
    assert!(ids.iter().any(|v| !v.is_ascii()), "full-width id");
    let mobiles = values("cn_mobile");
    for form in ["+86 ", "+86-", "0086", "-", " ", "(+86)"] {
        assert!(
            mobiles.iter().any(|v| v.contains(form)),
            "mobile form {form:?}"
        );
    }
    assert!(
        mobiles.iter().any(|v| v.starts_with('１')),
        "full-width mobile"
    );
    let cards = values("bank_card");
    assert!(
        cards.iter().any(|v| v.len() == 19 && v.starts_with("62")),
        "19-digit UnionPay"
    );
    assert!(cards.iter().any(|v| v.len() == 16), "16-digit card");
    assert!(
        cards.iter().any(|v| v.len() == 23 && v.contains(' ')),
        "19 digits as 4-4-4-4-3"
    );
    assert!(cards.iter().any(|v| v.contains('-')), "dashed card");
    let names = values("person_name");
    assert!(
        names.iter().any(|v| v.starts_with("欧阳")
            || v.starts_with("司马")
            || v.starts_with("上官")
            || v.starts_with("诸葛")),
        "compound surname"
    );
    // Values glued to Chinese text on both sides.
    let glued = truth.iter().filter(|s| s.ty == "cn_mobile").any(|s| {
        let text = std::str::from_utf8(&files[&s.path]).unwrap();
        let before = text[..s.start as usize].chars().next_back();
        let after = text[s.end as usize..].chars().next();
        before.is_some_and(|c| !c.is_ascii()) && after.is_some_and(|c| !c.is_ascii())
    });
    assert!(glued, "a mobile glued to Chinese on both sides");
}

#[test]
fn hard_negatives_do_not_validate_and_miss_the_truth() {
    let (dir, _) = corpus();
    let files = file_bytes(dir);
    let truth = read_truth(&dir.join(TRUTH_FILE)).unwrap();
    for n in negatives(dir) {
        let text = std::str::from_utf8(&files[&n.path]).unwrap();
        let token = &text[n.start..n.end];
        for ty in [
            PiiType::CnResidentId,
            PiiType::CnMobile,
            PiiType::CnLandline,
            PiiType::BankCard,
            PiiType::Uscc,
            PiiType::Email,
            PiiType::Ipv4,
            PiiType::Ipv6,
        ] {
            assert!(
                normalize(ty, token).is_err(),
                "{} validates as {ty}",
                n.kind
            );
        }
        match n.kind.as_str() {
            "resident_id_bad_check" | "resident_id_bad_date" => {
                assert_eq!(token.len(), 18);
                assert!(validate::resident_id(token).is_err());
            }
            "card_bad_luhn" => assert!(validate::bank_card(token).is_err()),
            "mobile_bad_prefix" => {
                assert_eq!(token.len(), 11);
                assert!(validate::mobile(token).is_err());
            }
            "serial_with_resident_id" => {
                // The inner 18 digits are a valid id: only the whole run is the token.
                assert_eq!(token.len(), 25);
                assert!(validate::resident_id(&token[7..]).is_ok());
            }
            "glued_mobile" => assert!(token.bytes().any(|b| b.is_ascii_alphabetic())),
            _ => {}
        }
        let overlaps = truth
            .iter()
            .any(|s| s.path == n.path && (s.start as usize) < n.end && n.start < s.end as usize);
        assert!(
            !overlaps,
            "hard negative {} overlaps a planted value",
            n.kind
        );
    }
}

/// Digit-run candidates as a scanner forms them: maximal ASCII or full-width digit runs
/// (an id may end in X), not glued to ASCII letters or digits, joined across single
/// spaces or dashes and a `+86`/`0086` prefix.
fn digit_candidates(text: &str) -> Vec<(usize, usize)> {
    let folded: Vec<(usize, char)> = text
        .char_indices()
        .map(|(i, c)| (i, fold_width(&c.to_string()).chars().next().unwrap_or(c)))
        .collect();
    let mut runs: Vec<(usize, usize)> = Vec::new(); // indexes into `folded`, end exclusive
    let mut i = 0;
    while i < folded.len() {
        if folded[i].1.is_ascii_digit() {
            let s = i;
            while i < folded.len() && folded[i].1.is_ascii_digit() {
                i += 1;
            }
            if i < folded.len() && matches!(folded[i].1, 'x' | 'X') {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    let glued = |k: usize| {
        folded
            .get(k)
            .is_some_and(|&(_, c)| c.is_ascii_alphanumeric())
    };
    let mut out = Vec::new();
    for a in 0..runs.len() {
        if runs[a].0 > 0 && glued(runs[a].0 - 1) {
            continue;
        }
        // Up to five groups joined by one separator each.
        let mut b = a;
        loop {
            let (s, e) = (runs[a].0, runs[b].1);
            if !glued(e) {
                let start = folded[s].0;
                let end = folded.get(e).map_or(text.len(), |&(i, _)| i);
                out.push((start, end));
            }
            let next = b + 1;
            if next >= runs.len() || next - a >= 5 {
                break;
            }
            let gap = runs[next].0 - runs[b].1;
            if gap != 1 || !matches!(folded[runs[b].1].1, ' ' | '-') {
                break;
            }
            b = next;
        }
    }
    out
}

#[test]
fn no_unplanted_value_of_a_digit_type() {
    let (dir, _) = corpus();
    let files = file_bytes(dir);
    let truth = read_truth(&dir.join(TRUTH_FILE)).unwrap();
    let mut by_file: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for s in &truth {
        by_file
            .entry(&s.path)
            .or_default()
            .push((s.start as usize, s.end as usize));
    }
    let mut checked = 0;
    for (path, bytes) in &files {
        if path == TRUTH_FILE || path == NEGATIVES_FILE {
            continue;
        }
        let text = std::str::from_utf8(bytes).unwrap();
        let spans = by_file.get(path.as_str()).cloned().unwrap_or_default();
        for (s, e) in digit_candidates(text) {
            if spans.iter().any(|&(a, b)| a < e && s < b) {
                continue;
            }
            let token = &text[s..e];
            checked += 1;
            for ty in [PiiType::CnResidentId, PiiType::CnMobile, PiiType::BankCard] {
                assert!(
                    normalize(ty, token).is_err(),
                    "{path}:{s}: an unplanted {ty} ({} bytes)",
                    token.len()
                );
            }
        }
    }
    assert!(checked > 10_000, "only {checked} candidates checked");
}

#[test]
fn perfect_findings_score_perfectly_and_truth_files_hold_no_values() {
    let (dir, _) = corpus();
    let truth = read_truth(&dir.join(TRUTH_FILE)).unwrap();
    let s = score(&truth, &truth);
    assert!(s.missed_targets().is_empty());
    let total = s.total();
    assert_eq!(
        (total.tp, total.fp(), total.fn_()),
        (truth.len() as u64, 0, 0)
    );
    // Shifted by one byte the spans still overlap; moved to another type they do not.
    let shifted: Vec<Span> = truth
        .iter()
        .map(|t| Span {
            start: t.start + 1,
            end: t.end + 1,
            ..t.clone()
        })
        .collect();
    assert_eq!(score(&truth, &shifted).total().tp, truth.len() as u64);
    let retyped: Vec<Span> = truth
        .iter()
        .map(|t| Span {
            ty: "hk_id".into(),
            ..t.clone()
        })
        .collect();
    assert_eq!(score(&truth, &retyped).total().tp, 0);
    for f in [TRUTH_FILE, NEGATIVES_FILE] {
        let text = fs::read_to_string(dir.join(f)).unwrap();
        assert!(
            !text.contains('@') && text.is_ascii(),
            "{f} holds no values"
        );
    }
}

#[test]
fn refuses_a_non_empty_directory() {
    let dir = scratch("nonempty");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("stale.txt"), "x").unwrap();
    let err = generate(&CorpusConfig::new(1, 1000), &dir).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    fs::remove_dir_all(&dir).unwrap();
}
