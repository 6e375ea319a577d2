#!/usr/bin/env python3
"""Presidio baseline: detection speed and quality of Microsoft Presidio's analyzer
configured with pattern recognizers equivalent to Custodia's Chinese detectors.

Recognizers: resident id (GB 11643 check character), mobile (allocated prefixes,
+86/0086, separators), bank card (16 or 19 digits, grouped, Luhn), USCC (GB 32100 check
character), email (Presidio's own EmailRecognizer), IPv4. Candidates are validated with
the same checks Custodia's validators apply, so the comparison is regex engine + Presidio
overhead against Custodia's scanner, not a weaker detector against a stronger one.

NLP: no spaCy model is downloaded. `--nlp blank` (default) saves `spacy.blank("zh")`
(character tokenizer, no dependencies) to a temporary directory and loads it through
SpacyNlpEngine by path, so Presidio's context enhancer sees tokens; `--nlp noop` uses
Presidio's NoOpNlpEngine (no tokens at all), the fastest setting pattern-only use allows.

Output: MB/s (analyze time only, and wall time including reading), findings count, and
optionally findings in `custodia scan --format jsonl` shape with BYTE offsets plus the
matching subset of the truth, to score with:
  cargo run --release -p custodia-corpus --example score -- CORPUS FINDINGS TRUTH_SUBSET
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from itertools import accumulate

from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer.predefined_recognizers import EmailRecognizer

LANG = "zh"
# Python's \d is Unicode: it takes full-width digits too, as Custodia's validators do
# after width folding. Boundaries are ASCII letters and any digit.
NOT_ALNUM_BEFORE = r"(?<![\dA-Za-z])"
NOT_ALNUM_AFTER = r"(?![\dA-Za-z])"


def fold(s):
    """Full-width ASCII to half-width, as custodia_detect::fold_width."""
    return "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in s)


def digits_of(s):
    return [c for c in fold(s) if c.isdigit() or c in "xX"]


class ResidentIdRecognizer(PatternRecognizer):
    WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43,
                 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}

    def __init__(self):
        date = r"\d{8}"
        super().__init__(
            supported_entity="CN_RESIDENT_ID",
            supported_language=LANG,
            patterns=[
                Pattern("id", NOT_ALNUM_BEFORE + r"\d{6}" + date + r"\d{3}[\dXxＸｘ]" + NOT_ALNUM_AFTER, 0.5),
                Pattern("id grouped", NOT_ALNUM_BEFORE + r"\d{6}[ -]" + date + r"[ -]\d{3}[\dXxＸｘ]" + NOT_ALNUM_AFTER, 0.5),
            ],
            context=["身份证", "证件", "idNo", "id_no", "certNo"],
        )

    def validate_result(self, text):
        d = [c.upper() for c in digits_of(text)]
        if len(d) != 18 or int("".join(d[:2])) not in self.PROVINCES:
            return False
        y, m, day = int("".join(d[6:10])), int("".join(d[10:12])), int("".join(d[12:14]))
        try:
            if not 1900 <= y or datetime.date(y, m, day) > datetime.date.today():
                return False
        except ValueError:
            return False
        s = sum(int(c) * w for c, w in zip(d[:17], self.WEIGHTS))
        return "10X98765432"[s % 11] == d[17]


class MobileRecognizer(PatternRecognizer):
    PREFIXES = set(range(130, 140)) | set(range(145, 150)) | {150, 151, 152, 153} | \
        set(range(155, 160)) | {162, 165, 166, 167} | set(range(170, 179)) | \
        set(range(180, 190)) | {190, 191, 192, 193} | set(range(195, 200))

    def __init__(self):
        super().__init__(
            supported_entity="CN_MOBILE",
            supported_language=LANG,
            patterns=[Pattern(
                "mobile",
                r"(?<![\dA-Za-z+])(?:(?:\(\+86\)|\+86|0086|86)[ -]?)?\d{3}[ -]?\d{4}[ -]?\d{4}" + NOT_ALNUM_AFTER,
                0.5,
            )],
            context=["手机", "电话", "mobile", "phone", "联系"],
        )

    def validate_result(self, text):
        d = [c for c in fold(text) if c.isdigit()]
        if len(d) > 11:
            d = d[-11:]
        return len(d) == 11 and int("".join(d[:3])) in self.PREFIXES


class BankCardRecognizer(PatternRecognizer):
    def __init__(self):
        super().__init__(
            supported_entity="BANK_CARD",
            supported_language=LANG,
            patterns=[
                Pattern("card", NOT_ALNUM_BEFORE + r"\d{16}(?:\d{3})?" + NOT_ALNUM_AFTER, 0.5),
                Pattern("card grouped", NOT_ALNUM_BEFORE + r"\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?" + NOT_ALNUM_AFTER, 0.5),
                Pattern("card 6+n", NOT_ALNUM_BEFORE + r"\d{6} \d{10}(?:\d{3})?" + NOT_ALNUM_AFTER, 0.4),
            ],
            context=["卡号", "银行卡", "card", "还款卡", "代扣卡"],
        )

    def validate_result(self, text):
        d = [int(c) for c in fold(text) if c.isdigit()]
        if not 12 <= len(d) <= 19:
            return False
        total = 0
        for i, x in enumerate(reversed(d)):
            if i % 2 == 1:
                x *= 2
                if x > 9:
                    x -= 9
            total += x
        return total % 10 == 0


class UsccRecognizer(PatternRecognizer):
    ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]

    def __init__(self):
        super().__init__(
            supported_entity="USCC",
            supported_language=LANG,
            patterns=[Pattern(
                "uscc",
                NOT_ALNUM_BEFORE + r"[1-9A-GY][0-9A-HJ-NPQRTUWXY]\d{6}[0-9A-HJ-NPQRTUWXY]{10}" + NOT_ALNUM_AFTER,
                0.5,
            )],
            context=["统一社会信用代码", "信用代码", "uscc"],
        )

    def validate_result(self, text):
        t = text.upper()
        if len(t) != 18 or any(c not in self.ALPHABET for c in t):
            return False
        s = sum(self.ALPHABET.index(c) * w for c, w in zip(t[:17], self.WEIGHTS))
        return self.ALPHABET[(31 - s % 31) % 31] == t[17]


class Ipv4Recognizer(PatternRecognizer):
    def __init__(self):
        octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        super().__init__(
            supported_entity="IPV4",
            supported_language=LANG,
            patterns=[Pattern(
                "ipv4",
                r"(?<![0-9A-Za-z.])" + octet + r"(?:\." + octet + r"){3}(?![0-9A-Za-z]|\.\d)",
                0.6,
            )],
            context=["ip", "IP", "remote", "登录"],
        )


TYPE_IDS = {
    "CN_RESIDENT_ID": "cn_resident_id",
    "CN_MOBILE": "cn_mobile",
    "BANK_CARD": "bank_card",
    "USCC": "uscc",
    "EMAIL_ADDRESS": "email",
    "IPV4": "ipv4",
}


def offline_tldextract():
    """Presidio's EmailRecognizer checks the domain with tldextract, which fetches the
    Public Suffix List from the internet on first use; use its bundled snapshot."""
    import tldextract
    import tldextract.tldextract as impl
    impl.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())


def make_engine(nlp_kind):
    offline_tldextract()
    if nlp_kind == "noop":
        from presidio_analyzer.nlp_engine import NoOpNlpEngine
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": LANG, "model_name": "none"}])
    else:
        import spacy
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        model_dir = os.path.join(tempfile.mkdtemp(prefix="blank-zh-"), "model")
        spacy.blank(LANG).to_disk(model_dir)
        # A path that exists is loaded as is; nothing is downloaded.
        nlp_engine = SpacyNlpEngine(models=[{"lang_code": LANG, "model_name": model_dir}])
    nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=[LANG])
    for r in (ResidentIdRecognizer(), MobileRecognizer(), BankCardRecognizer(),
              UsccRecognizer(), Ipv4Recognizer(),
              EmailRecognizer(supported_language=LANG)):
        registry.add_recognizer(r)
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=[LANG])


def corpus_files(corpus):
    out = []
    for root, _, files in os.walk(corpus):
        for f in files:
            if f in ("truth.jsonl", "hard_negatives.jsonl"):
                continue
            out.append(os.path.relpath(os.path.join(root, f), corpus).replace(os.sep, "/"))
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", help="corpus directory written by custodia-corpus")
    ap.add_argument("--mb", type=float, default=8.0,
                    help="megabytes to analyze, taken as an equal prefix of every file (default 8)")
    ap.add_argument("--chunk-kb", type=float, default=1,
                    help="text per analyze() call, cut at line ends (default 1: Presidio's "
                         "context enhancer is quadratic in the text length, so large chunks "
                         "are much slower)")
    ap.add_argument("--nlp", choices=["blank", "noop"], default="blank")
    ap.add_argument("--findings", help="write findings here, custodia scan jsonl shape")
    ap.add_argument("--truth-subset", help="write the truth spans inside the analyzed prefixes here")
    args = ap.parse_args()

    t_setup = time.perf_counter()
    engine = make_engine(args.nlp)
    setup = time.perf_counter() - t_setup
    files = corpus_files(args.corpus)
    per_file = int(args.mb * 1e6 / len(files))
    entities = list(TYPE_IDS)
    prefixes = {}
    findings = []
    analyzed = 0
    analyze_secs = 0.0
    t_wall = time.perf_counter()
    for rel in files:
        with open(os.path.join(args.corpus, rel), "rb") as fh:
            data = fh.read(per_file)
        cut = data.rfind(b"\n") + 1 if len(data) == per_file else len(data)
        data = data[:cut]
        prefixes[rel] = cut
        analyzed += cut
        text = data.decode("utf-8")
        byte_base = 0
        pos = 0
        chunk_chars = int(args.chunk_kb * 1024)
        while pos < len(text):
            end = text.find("\n", pos + chunk_chars)
            end = len(text) if end < 0 else end + 1
            chunk = text[pos:end]
            t0 = time.perf_counter()
            results = engine.analyze(text=chunk, language=LANG, entities=entities)
            analyze_secs += time.perf_counter() - t0
            if results:
                offs = [0, *accumulate(len(c.encode("utf-8")) for c in chunk)]
                for r in results:
                    findings.append({
                        "path": rel,
                        "start": byte_base + offs[r.start],
                        "end": byte_base + offs[r.end],
                        "type": TYPE_IDS[r.entity_type],
                        "confidence": round(r.score, 3),
                    })
            byte_base += len(chunk.encode("utf-8"))
            pos = end
    wall = time.perf_counter() - t_wall
    mb = analyzed / 1e6
    by_type = {}
    for f in findings:
        by_type[f["type"]] = by_type.get(f["type"], 0) + 1
    print(f"presidio-analyzer, nlp={args.nlp}, {len(files)} files, {mb:.2f} MB analyzed "
          f"in chunks of {args.chunk_kb} KB (setup {setup:.1f} s)")
    print(f"analyze(): {analyze_secs:.2f} s -> {mb / analyze_secs:.3f} MB/s; "
          f"wall {wall:.2f} s -> {mb / wall:.3f} MB/s")
    print(f"findings: {len(findings)} " + " ".join(f"{k}={v}" for k, v in sorted(by_type.items())))
    if args.findings:
        with open(args.findings, "w") as out:
            for f in findings:
                out.write(json.dumps(f, ensure_ascii=False) + "\n")
    if args.truth_subset:
        with open(os.path.join(args.corpus, "truth.jsonl")) as src, open(args.truth_subset, "w") as out:
            for line in src:
                t = json.loads(line)
                if t["type"] in TYPE_IDS.values() and t["end"] <= prefixes.get(t["path"], 0):
                    out.write(line)


if __name__ == "__main__":
    sys.exit(main())
