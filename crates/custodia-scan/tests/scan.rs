//! End-to-end: real files of every listed format on disk, real SQLite, PostgreSQL
//! (`CUSTODIA_TEST_DATABASE_URL`) and MariaDB/MySQL (`CUSTODIA_TEST_MYSQL_URL`) tables.
//! Assertions name types, offsets and masks, never print a planted value.

use custodia_core::PiiType;
use custodia_detect::normalize;
use custodia_scan::report::{Format, Writer};
use custodia_scan::{ColumnReport, Event, Finding, Options};
use std::io::Write;
use std::path::{Path, PathBuf};

// Planted values (synthetic, checksums valid).
const ID: &str = "11010519491231002X";
const MOBILE: &str = "13812345678";
const CARD: &str = "6222020200112233446"; // 19-digit UnionPay, Luhn-valid
const EMAIL: &str = "zhang.wei@example.com";

/// Asserts a found span holds the planted value without printing either on failure.
fn same(found: &str, planted: &str, what: &str) {
    assert!(
        found == planted,
        "{what}: the span does not hold the planted value"
    );
}

fn luhn_ok(s: &str) -> bool {
    custodia_detect::validate::bank_card(s).is_ok()
}

struct Scan {
    findings: Vec<Finding>,
    columns: Vec<ColumnReport>,
    skipped: Vec<(String, String)>,
    done: Vec<String>,
}

fn scan(paths: &[PathBuf], opts: &Options) -> Scan {
    let (tx, rx) = custodia_scan::channel();
    let paths = paths.to_vec();
    let o = opts.clone();
    let h = std::thread::spawn(move || custodia_scan::scan_files(&paths, &o, &tx));
    let mut s = Scan {
        findings: vec![],
        columns: vec![],
        skipped: vec![],
        done: vec![],
    };
    for e in rx {
        match e {
            Event::Findings(f) => s.findings.extend(f),
            Event::Rendered { .. } => panic!("rendered without Options::jsonl"),
            Event::Column(c) => s.columns.push(c),
            Event::Skipped { path, reason } => s.skipped.push((path, reason)),
            Event::Done { path, .. } => s.done.push(path),
        }
    }
    h.join().unwrap().unwrap();
    s.findings
        .sort_by(|a, b| (&a.path, a.start).cmp(&(&b.path, b.start)));
    s
}

/// The finding of `ty` whose bytes in `file` (decompressed `content`) normalize to `value`.
fn has(s: &Scan, content: &[u8], path: &Path, ty: PiiType, value: &str) -> Finding {
    let want = normalize(ty, value).expect("planted value is valid");
    let p = path.to_string_lossy();
    s.findings
        .iter()
        .find(|f| {
            *f.path == *p
                && f.ty == ty
                && std::str::from_utf8(&content[f.start as usize..f.end as usize])
                    .ok()
                    .and_then(|raw| normalize(ty, raw).ok())
                    .as_deref()
                    == Some(want.as_str())
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no {} finding at the planted value in {p}; found types: {:?}",
                ty.id(),
                s.findings
                    .iter()
                    .filter(|f| *f.path == *p)
                    .map(|f| (f.ty.id(), f.start, f.end))
                    .collect::<Vec<_>>()
            )
        })
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn text_offsets_lines_and_columns_are_exact() {
    assert!(luhn_ok(CARD));
    let dir = tempfile::tempdir().unwrap();
    // Full-width digits, a mobile glued to Chinese text, a grouped card, a lowercase x.
    let fw_mobile: String = MOBILE
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap())
        .collect();
    let text = format!(
        "第一行没有什么。\n客户来电，手机{MOBILE}联系，备用手机{fw_mobile}。\n\
         身份证号{}，卡号 6222 0202 0011 2233 446，邮箱{EMAIL}\n\
         order ORD{MOBILE} and txn 2023110512304599887766554 are not personal data\n",
        ID.to_lowercase()
    );
    let p = write(dir.path(), "notes.txt", text.as_bytes());
    let s = scan(std::slice::from_ref(&p), &Options::default());
    let b = text.as_bytes();
    let m = has(&s, b, &p, PiiType::CnMobile, MOBILE);
    assert_eq!(m.line, 2);
    assert_eq!(m.column, "客户来电，手机".chars().count() as u64 + 1);
    assert_eq!(m.masked, "138****5678");
    let fw = s
        .findings
        .iter()
        .filter(|f| f.ty == PiiType::CnMobile)
        .nth(1)
        .expect("full-width mobile found");
    same(
        &text[fw.start as usize..fw.end as usize],
        &fw_mobile,
        "full-width mobile",
    );
    let id = has(&s, b, &p, PiiType::CnResidentId, ID);
    assert_eq!(id.line, 3);
    assert_eq!(id.masked, "110105********002X");
    has(&s, b, &p, PiiType::BankCard, CARD);
    has(&s, b, &p, PiiType::Email, EMAIL);
    // Nothing on line 1 or line 4 (glued to letters, inside a longer digit run).
    assert!(
        s.findings.iter().all(|f| f.line == 2 || f.line == 3),
        "{:?}",
        s.findings
            .iter()
            .map(|f| (f.ty.id(), f.line))
            .collect::<Vec<_>>()
    );
    assert_eq!(s.done.len(), 1);
}

#[test]
fn gzip_logs_report_offsets_in_the_decompressed_stream() {
    let dir = tempfile::tempdir().unwrap();
    let log = format!(
        "2026-11-29T10:00:00Z INFO login ok user={EMAIL} ip=10.1.2.3 req=7f3a\n\
         2026-11-29T10:00:01Z WARN sms sent to +86 138-1234-5678 version=v1.2.3.4\n"
    );
    let p = write(dir.path(), "app.log.gz", &gz(log.as_bytes()));
    let s = scan(std::slice::from_ref(&p), &Options::default());
    let b = log.as_bytes();
    has(&s, b, &p, PiiType::Email, EMAIL);
    has(&s, b, &p, PiiType::Ipv4, "10.1.2.3");
    let m = has(&s, b, &p, PiiType::CnMobile, MOBILE);
    assert_eq!(m.line, 2);
    assert!(s
        .findings
        .iter()
        .all(|f| f.ty != PiiType::Ipv4 || f.line == 1));
}

#[test]
fn csv_and_tsv_name_columns_and_classify_them() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "\u{feff}姓名,身份证号,手机,备注,余额\n\
         张伟,{ID},{MOBILE},\"说 \"\"你好\"\"，回电{MOBILE}\",12.50\n\
         李娜,110105199003077777,139-8765-4321,,3\n"
    );
    let p = write(dir.path(), "export.csv", csv.as_bytes());
    let tsv = format!("name\tphone\n王芳\t{MOBILE}\n");
    let t = write(dir.path(), "sub/x.tsv", tsv.as_bytes());
    let s = scan(&[dir.path().to_path_buf()], &Options::default());
    let b = csv.as_bytes();
    let id = has(&s, b, &p, PiiType::CnResidentId, ID);
    assert_eq!(id.field.as_deref(), Some("身份证号"));
    assert_eq!(id.line, 2);
    let m = has(&s, b, &p, PiiType::CnMobile, MOBILE);
    assert_eq!(m.field.as_deref(), Some("手机"));
    // The mobile inside the quoted note with doubled quotes: offsets still exact.
    let in_note = s
        .findings
        .iter()
        .find(|f| f.field.as_deref() == Some("备注"))
        .expect("mobile in the note");
    same(
        &csv[in_note.start as usize..in_note.end as usize],
        MOBILE,
        "mobile in the note",
    );
    let name = has(&s, b, &p, PiiType::PersonName, "张伟");
    assert_eq!(name.field.as_deref(), Some("姓名"));
    has(&s, tsv.as_bytes(), &t, PiiType::CnMobile, MOBILE);
    let col = |c: &str| {
        s.columns
            .iter()
            .find(|r| r.column == c && r.table.ends_with("export.csv"))
            .unwrap_or_else(|| panic!("column {c}"))
    };
    assert_eq!(col("身份证号").ty, Some(PiiType::CnResidentId));
    assert_eq!(col("手机").share, 1.0);
    assert_eq!(col("余额").ty, None);
    assert_eq!(col("余额").plain, "decimal");
    assert!(!col("备注").always_present);
}

#[test]
fn json_and_jsonl_track_keys_and_escapes() {
    let dir = tempfile::tempdir().unwrap();
    // \u escapes before the value shift raw offsets; the map must undo that.
    let jsonl = format!(
        "{{\"msg\":\"\\u5ba2\\u6237\\u7535\\u8bdd\",\"customer\":{{\"mobile\":\"{MOBILE}\",\"idNo\":\"{ID}\"}}}}\n\
         {{\"phone\":{MOBILE},\"note\":\"回拨 \\\"{MOBILE}\\\"\"}}\n"
    );
    let p = write(dir.path(), "events.jsonl", jsonl.as_bytes());
    let pretty =
        format!("{{\n  \"customers\": [\n    {{\n      \"email\": \"{EMAIL}\"\n    }}\n  ]\n}}\n");
    let q = write(dir.path(), "dump.json", pretty.as_bytes());
    let s = scan(&[p.clone(), q.clone()], &Options::default());
    let b = jsonl.as_bytes();
    let m = has(&s, b, &p, PiiType::CnMobile, MOBILE);
    assert_eq!(m.field.as_deref(), Some("customer.mobile"));
    let id = has(&s, b, &p, PiiType::CnResidentId, ID);
    assert_eq!(id.field.as_deref(), Some("customer.idNo"));
    let line2: Vec<_> = s
        .findings
        .iter()
        .filter(|f| *f.path == *p.to_string_lossy() && f.line == 2)
        .collect();
    assert_eq!(line2.len(), 2, "number value and escaped-quote note");
    for f in line2 {
        same(
            &jsonl[f.start as usize..f.end as usize],
            MOBILE,
            "mobile on line 2",
        );
    }
    let e = has(&s, pretty.as_bytes(), &q, PiiType::Email, EMAIL);
    assert_eq!(e.field.as_deref(), Some("customers.email"));
    assert_eq!(e.line, 4);
}

/// A minimal .xlsx (inline strings), as Excel would store one sheet.
fn xlsx(rows: &[&[&str]]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut sheet = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>",
    );
    for (r, row) in rows.iter().enumerate() {
        sheet.push_str(&format!("<row r=\"{}\">", r + 1));
        for (c, v) in row.iter().enumerate() {
            let col = (b'A' + c as u8) as char;
            sheet.push_str(&format!(
                "<c r=\"{col}{}\" t=\"inlineStr\"><is><t>{v}</t></is></c>",
                r + 1
            ));
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    let files = [
        ("[Content_Types].xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/></Types>".to_string()),
        ("_rels/.rels", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>".to_string()),
        ("xl/workbook.xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets><sheet name=\"客户\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>".to_string()),
        ("xl/_rels/workbook.xml.rels", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>".to_string()),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(vec![]));
    for (name, body) in files {
        w.start_file(
            name,
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn spreadsheets_and_parquet_report_row_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let x = write(
        dir.path(),
        "list.xlsx",
        &xlsx(&[&["姓名", "手机号码", "邮箱"], &["张伟", MOBILE, EMAIL]]),
    );
    let xg = write(
        dir.path(),
        "list2.xlsx.gz",
        &gz(&xlsx(&[&["证件号码"], &[ID]])),
    );
    let pq = dir.path().join("customers.parquet");
    write_parquet(&pq);
    let bad = write(dir.path(), "broken.xlsx", b"this is not a zip archive");
    let s = scan(&[dir.path().to_path_buf()], &Options::default());
    let at = |p: &Path, ty: PiiType| {
        s.findings
            .iter()
            .find(|f| *f.path == *p.to_string_lossy() && f.ty == ty)
            .cloned()
            .unwrap_or_else(|| panic!("{} in {}", ty.id(), p.display()))
    };
    let m = at(&x, PiiType::CnMobile);
    assert_eq!((m.line, m.column), (2, 2));
    assert_eq!(m.field.as_deref(), Some("客户.手机号码"));
    assert_eq!((m.start, m.end), (0, 11));
    assert_eq!(at(&x, PiiType::PersonName).masked, "张*");
    at(&x, PiiType::Email);
    assert_eq!(at(&xg, PiiType::CnResidentId).line, 2);
    let c = at(&pq, PiiType::BankCard);
    assert_eq!((c.line, c.field.as_deref()), (2, Some("card_no")));
    assert_eq!(at(&pq, PiiType::CnMobile).field.as_deref(), Some("mobile"));
    // The broken file is reported and skipped; everything else was still scanned.
    assert_eq!(s.skipped.len(), 1, "{:?}", s.skipped);
    assert_eq!(s.skipped[0].0, bad.to_string_lossy());
    assert_eq!(s.done.len(), 3);
}

fn write_parquet(path: &Path) {
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let schema = parse_message_type(
        "message customers { REQUIRED BYTE_ARRAY card_no (UTF8); REQUIRED INT64 mobile; }",
    )
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(
        file,
        std::sync::Arc::new(schema),
        std::sync::Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut rg = w.next_row_group().unwrap();
    let cards: Vec<ByteArray> = ["not a card", CARD]
        .iter()
        .map(|s| ByteArray::from(*s))
        .collect();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<ByteArrayType>()
        .write_batch(&cards, None, None)
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<Int64Type>()
        .write_batch(&[12345, MOBILE.parse::<i64>().unwrap()], None, None)
        .unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();
}

#[test]
fn excludes_missing_paths_and_binaries() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "keep/a.txt", format!("手机{MOBILE}").as_bytes());
    write(
        dir.path(),
        "node_modules/b.txt",
        format!("手机{MOBILE}").as_bytes(),
    );
    write(dir.path(), "keep/c.tmp", format!("手机{MOBILE}").as_bytes());
    write(dir.path(), "keep/d.bin", b"\x00\x01\x02 13812345678");
    let opts = Options {
        excludes: vec!["node_modules/".into(), "*.tmp".into()],
        ..Options::default()
    };
    let missing = dir.path().join("nope");
    let s = scan(&[dir.path().to_path_buf(), missing.clone()], &opts);
    let paths: Vec<&str> = s.findings.iter().map(|f| &*f.path).collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].ends_with("keep/a.txt"));
    assert_eq!(
        s.skipped,
        vec![(missing.to_string_lossy().into_owned(), "not found".into())]
    );
}

#[test]
fn outputs_never_contain_a_raw_value() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("客户张伟，身份证{ID}，手机{MOBILE}，卡号{CARD}，邮箱{EMAIL}\n");
    let p = write(dir.path(), "n.txt", text.as_bytes());
    for format in [Format::Jsonl, Format::Table, Format::Html] {
        let (tx, rx) = custodia_scan::channel();
        let paths = vec![p.clone()];
        let h =
            std::thread::spawn(move || custodia_scan::scan_files(&paths, &Options::default(), &tx));
        let mut w = Writer::new(Vec::new(), format);
        for e in rx {
            w.event(e).unwrap();
        }
        h.join().unwrap().unwrap();
        let mut out = Vec::new();
        let summary = {
            let mut w2 = Writer::new(&mut out, format);
            // Replay the summary into a writer that owns the output buffer.
            w2.summary = w.summary.clone();
            w2.finish("t").unwrap()
        };
        assert!(summary.findings >= 4);
        let text = String::from_utf8(out).unwrap();
        for raw in [ID, MOBILE, CARD, EMAIL, "张伟"] {
            assert!(!text.contains(raw), "{format:?} output holds a raw value");
        }
    }
    // And the JSON lines (written by the scanning threads here) have exactly the
    // documented keys.
    let (tx, rx) = custodia_scan::channel();
    let paths = vec![p.clone()];
    let rendered = Options {
        jsonl: true,
        ..Options::default()
    };
    let h = std::thread::spawn(move || custodia_scan::scan_files(&paths, &rendered, &tx));
    let mut buf = Vec::new();
    {
        let mut w = Writer::new(&mut buf, Format::Jsonl);
        for e in rx {
            w.event(e).unwrap();
        }
        w.finish("t").unwrap();
    }
    h.join().unwrap().unwrap();
    let text = String::from_utf8(buf).unwrap();
    for raw in [ID, MOBILE, CARD, EMAIL, "张伟"] {
        assert!(!text.contains(raw), "jsonl output holds a raw value");
    }
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "column",
            "confidence",
            "end",
            "line",
            "masked",
            "path",
            "start",
            "type"
        ]
    );
}

// ------------------------------------------------------------------ databases

async fn db_scan(url: &str, table: &str, sample: u64) -> (Vec<Finding>, Vec<ColumnReport>) {
    let (tx, rx) = custodia_scan::channel();
    let opts = Options {
        tables: vec![table.to_string()],
        sample,
        ..Options::default()
    };
    let collector = std::thread::spawn(move || {
        let (mut f, mut c) = (vec![], vec![]);
        for e in rx {
            match e {
                Event::Findings(x) => f.extend(x),
                Event::Rendered { .. } => panic!("rendered without Options::jsonl"),
                Event::Column(x) => c.push(x),
                Event::Skipped { path, reason } => panic!("{path} skipped: {reason}"),
                Event::Done { .. } => {}
            }
        }
        (f, c)
    });
    custodia_scan::db::scan_database(url, &opts, &tx)
        .await
        .unwrap();
    drop(tx);
    collector.join().unwrap()
}

/// 60 rows: a name, an id, a mobile, a password hash, a free-text note, an amount.
fn rows() -> Vec<[String; 6]> {
    let mut s = custodia_detect::synth::Synth::new(42);
    (0..60)
        .map(|i| {
            [
                s.person_name(),
                s.resident_id(),
                s.mobile(),
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string(),
                if i % 10 == 0 {
                    format!("客户要求回电 {}", s.mobile())
                } else {
                    "无".to_string()
                },
                format!("{}.{:02}", i * 17, i % 100),
            ]
        })
        .collect()
}

fn check_columns(cols: &[ColumnReport], findings: &[Finding], table: &str) {
    let col = |c: &str| {
        cols.iter()
            .find(|r| r.column == c)
            .unwrap_or_else(|| panic!("{c}"))
    };
    assert_eq!(cols.len(), 6, "{cols:?}");
    assert_eq!(col("customer_name").ty, Some(PiiType::PersonName));
    assert!(
        col("customer_name").share >= 0.9,
        "{:?}",
        col("customer_name")
    );
    assert_eq!(col("id_no").ty, Some(PiiType::CnResidentId));
    assert_eq!(col("id_no").share, 1.0);
    assert_eq!(col("mobile").ty, Some(PiiType::CnMobile));
    assert_eq!(col("mobile").sampled, 60);
    assert_eq!(col("login_password").level, custodia_core::Level::C3);
    assert_eq!(col("note").ty, Some(PiiType::CnMobile));
    assert!((col("note").share - 0.1).abs() < 0.01);
    assert_eq!(col("amount").ty, None);
    assert_eq!(col("amount").plain, "decimal");
    let f = findings
        .iter()
        .find(|f| f.field.as_deref() == Some("id_no"))
        .unwrap();
    assert_eq!(&*f.path, table);
    assert_eq!((f.start, f.end), (0, 18));
    // A proposed schema from the table is a valid collection.
    let text = custodia_scan::schema::propose(table, table, cols);
    let schema = custodia_core::CollectionSchema::from_toml(&text).unwrap();
    schema.validate().unwrap();
    assert!(schema.field("id_no").unwrap().searchable);
}

const COLS: &str = "customer_name, id_no, mobile, login_password, note, amount";

/// Creates `table` with 2,000 notes, a mobile in those of the second half only: a sample
/// of the first rows would find none.
fn half_and_half(table: &str) -> [String; 2] {
    let mut values = vec!["('无')".to_string(); 1000];
    values.extend((0..1000).map(|_| format!("('回电 {MOBILE}')")));
    [
        format!("CREATE TABLE {table} (note VARCHAR(64))"),
        format!("INSERT INTO {table} (note) VALUES {}", values.join(", ")),
    ]
}

/// 100 rows of [`half_and_half`]'s 2,000, drawn at random: about half with a mobile
/// (0.3–0.7 is four standard deviations either side).
async fn check_random_sample(url: &str, table: &str) {
    let (_, cols) = db_scan(url, table, 100).await;
    let note = cols.iter().find(|c| c.column == "note").unwrap();
    assert_eq!(note.sampled, 100);
    assert!((0.3..=0.7).contains(&note.share), "{note:?}");
}

#[tokio::test]
async fn sqlite_tables_are_sampled_and_classified() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("crm.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE crm_customers (id INTEGER PRIMARY KEY, customer_name TEXT, id_no TEXT, mobile INTEGER, login_password TEXT, note TEXT, amount REAL)")
        .execute(&pool).await.unwrap();
    for r in rows() {
        sqlx::query(&format!(
            "INSERT INTO crm_customers ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))
        .bind(&r[0])
        .bind(&r[1])
        .bind(r[2].parse::<i64>().unwrap())
        .bind(&r[3])
        .bind(&r[4])
        .bind(r[5].parse::<f64>().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    }
    for sql in half_and_half("notes") {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let url = format!("sqlite://{}", dir.path().join("crm.db").display());
    let (f, c) = db_scan(&url, "crm_customers", 100).await;
    let c: Vec<_> = c.into_iter().filter(|c| c.column != "id").collect();
    check_columns(&c, &f, "crm_customers");
    check_random_sample(&url, "notes").await;
}

#[tokio::test]
async fn postgres_tables_are_sampled_and_classified() {
    let Ok(url) = std::env::var("CUSTODIA_TEST_DATABASE_URL") else {
        eprintln!("CUSTODIA_TEST_DATABASE_URL not set: PostgreSQL scan not run");
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let schema = format!("scan_{}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE TABLE {schema}.customers (customer_name TEXT, id_no VARCHAR(18), mobile BIGINT, login_password TEXT, note TEXT, amount NUMERIC(12,2))"))
        .execute(&pool).await.unwrap();
    for r in rows() {
        sqlx::query(&format!(
            "INSERT INTO {schema}.customers ({COLS}) VALUES ($1, $2, $3, $4, $5, $6::numeric)"
        ))
        .bind(&r[0])
        .bind(&r[1])
        .bind(r[2].parse::<i64>().unwrap())
        .bind(&r[3])
        .bind(&r[4])
        .bind(&r[5])
        .execute(&pool)
        .await
        .unwrap();
    }
    let table = format!("{schema}.customers");
    let (f, c) = db_scan(&url, &table, 100).await;
    // Analyzed: the sample is sized from the planner's row estimate, not a count.
    for sql in half_and_half(&format!("{schema}.notes")) {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    sqlx::query(&format!("ANALYZE {schema}.notes"))
        .execute(&pool)
        .await
        .unwrap();
    check_random_sample(&url, &format!("{schema}.notes")).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
    check_columns(&c, &f, &table);
    if let Ok(m) = std::env::var("CUSTODIA_TEST_PG_MARKER") {
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .open(m)
            .and_then(|mut f| writeln!(f, "custodia-scan scan_postgres passed"));
    }
}

#[tokio::test]
async fn mariadb_tables_are_sampled_and_classified() {
    let Ok(url) = std::env::var("CUSTODIA_TEST_MYSQL_URL") else {
        eprintln!("CUSTODIA_TEST_MYSQL_URL not set: MariaDB/MySQL scan not run");
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
    let table = format!("scan_customers_{}", std::process::id());
    sqlx::query(&format!("CREATE TABLE {table} (customer_name VARCHAR(32), id_no CHAR(18), mobile BIGINT, login_password TEXT, note TEXT, amount DECIMAL(12,2)) CHARACTER SET utf8mb4"))
        .execute(&pool).await.unwrap();
    for r in rows() {
        sqlx::query(&format!(
            "INSERT INTO {table} ({COLS}) VALUES (?, ?, ?, ?, ?, ?)"
        ))
        .bind(&r[0])
        .bind(&r[1])
        .bind(r[2].parse::<i64>().unwrap())
        .bind(&r[3])
        .bind(&r[4])
        .bind(&r[5])
        .execute(&pool)
        .await
        .unwrap();
    }
    let (f, c) = db_scan(&url, &table, 100).await;
    let notes = format!("{table}_notes");
    for sql in half_and_half(&notes) {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    // Fresh statistics: InnoDB refreshes its row estimate in the background.
    sqlx::query(&format!("ANALYZE TABLE {notes}"))
        .execute(&pool)
        .await
        .unwrap();
    check_random_sample(&url, &notes).await;
    for t in [&table, &notes] {
        sqlx::query(&format!("DROP TABLE {t}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    check_columns(&c, &f, &table);
    if let Ok(m) = std::env::var("CUSTODIA_TEST_PG_MARKER") {
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .open(m)
            .and_then(|mut f| writeln!(f, "custodia-scan scan_mariadb passed"));
    }
}

#[test]
fn large_files_are_scanned_in_parallel_blocks_with_exact_lines() {
    // ~5 MB: several 1 MB blocks scanned at once; lines and offsets must still be exact.
    let dir = tempfile::tempdir().unwrap();
    let filler = "普通的一行文字，没有任何个人信息。 ordinary words 2026-11-29\n";
    let mut text = String::new();
    let mut planted = vec![];
    for i in 0..80_000u64 {
        if i % 9_973 == 0 {
            planted.push((i + 1, text.len()));
            text.push_str(&format!("回电手机{MOBILE}\n"));
        } else {
            text.push_str(filler);
        }
    }
    assert!(text.len() > 4 << 20);
    let p = write(dir.path(), "big.log", text.as_bytes());
    let s = scan(std::slice::from_ref(&p), &Options::default());
    let got: Vec<(u64, u64)> = s.findings.iter().map(|f| (f.line, f.start)).collect();
    let want: Vec<(u64, u64)> = planted
        .iter()
        .map(|(line, at)| (*line, (*at + "回电手机".len()) as u64))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn values_never_become_field_names() {
    // A CSV without a header row, a sheet without one, and JSON objects keyed by a mobile
    // number: `field` must not carry the value.
    let dir = tempfile::tempdir().unwrap();
    let csv = format!("张伟,{ID},{MOBILE}\n李娜,{ID},{MOBILE}\n");
    write(dir.path(), "noheader.csv", csv.as_bytes());
    write(
        dir.path(),
        "noheader.xlsx",
        &xlsx(&[&[MOBILE, EMAIL], &[MOBILE, EMAIL]]),
    );
    let json = format!("{{\"{MOBILE}\": {{\"email\": \"{EMAIL}\"}}, \"{ID}\": 1}}\n");
    write(dir.path(), "keyed.json", json.as_bytes());
    let s = scan(&[dir.path().to_path_buf()], &Options::default());
    assert!(s.findings.len() >= 8, "{}", s.findings.len());
    for f in &s.findings {
        let field = f.field.as_deref().unwrap_or("");
        for raw in [ID, MOBILE, EMAIL, "张伟"] {
            assert!(
                !field.contains(raw),
                "a value used as a field name ({})",
                f.ty.id()
            );
        }
    }
    for c in &s.columns {
        for raw in [ID, MOBILE, "张伟"] {
            assert!(!c.column.contains(raw), "a value used as a column name");
        }
    }
    let email = s
        .findings
        .iter()
        .find(|f| f.path.ends_with("keyed.json") && f.ty == PiiType::Email)
        .expect("email under a keyed object");
    assert_eq!(email.field.as_deref(), Some("*.email"));
}

#[test]
fn csv_bytes_after_a_closing_quote_are_scanned() {
    // Malformed CSV (a value glued after a quoted field) still holds data.
    let dir = tempfile::tempdir().unwrap();
    let csv = format!("姓名,备注\n\"张伟\"{MOBILE},无\n");
    let p = write(dir.path(), "glued.csv", csv.as_bytes());
    let s = scan(&[dir.path().to_path_buf()], &Options::default());
    let m = s
        .findings
        .iter()
        .find(|f| f.ty == PiiType::CnMobile)
        .expect("the glued mobile is found");
    same(
        &csv[m.start as usize..m.end as usize],
        MOBILE,
        "glued mobile",
    );
    assert_eq!(m.field.as_deref(), Some("姓名"));
    assert!(*m.path == *p.to_string_lossy());
    assert!(s.findings.iter().any(|f| f.ty == PiiType::PersonName));
}

#[test]
fn a_text_file_that_turns_gbk_after_its_first_megabytes_is_decoded_there() {
    // 3 MB of UTF-8 (the file is sniffed as UTF-8), then GBK lines appended by another
    // tool; and a UTF-8 file with a few stray bytes, which must stay UTF-8.
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Vec::new();
    while raw.len() < 3 << 20 {
        raw.extend_from_slice("2026-11-30 12:00:00 INFO 服务正常，请求已处理。\n".as_bytes());
    }
    let offset = raw.len();
    let note = format!("客户张伟来电，手机{MOBILE}，地址北京市朝阳区建国路88号3栋2单元501室。\n");
    for _ in 0..50 {
        raw.extend_from_slice(&encoding_rs::GBK.encode(&note).0);
    }
    let t = write(dir.path(), "mixed.log", &raw);
    let mut noisy = format!("客户李娜来电，手机{MOBILE}。\n").into_bytes();
    noisy.extend_from_slice(b"\xff\xfe binary noise\n");
    noisy.extend_from_slice("联系人王芳，地址上海市浦东新区世纪大道100号。\n".as_bytes());
    let u = write(dir.path(), "noisy.log", &noisy);
    let s = scan(&[dir.path().to_path_buf()], &Options::default());
    let of = |p: &Path, ty: PiiType| -> Vec<Finding> {
        s.findings
            .iter()
            .filter(|f| *f.path == *p.to_string_lossy() && f.ty == ty)
            .cloned()
            .collect()
    };
    let names = of(&t, PiiType::PersonName);
    assert_eq!(names.len(), 50, "a name on every GBK line");
    let first = &names[0];
    assert!(first.start as usize >= offset);
    let decoded = encoding_rs::GBK
        .decode_without_bom_handling(&raw[first.start as usize..first.end as usize])
        .0
        .into_owned();
    same(&decoded, "张伟", "the name's bytes in the file");
    assert_eq!(of(&t, PiiType::Address).len(), 50);
    assert_eq!(of(&t, PiiType::CnMobile).len(), 50);
    // The UTF-8 file keeps its Chinese findings around the noise.
    assert_eq!(of(&u, PiiType::PersonName).len(), 2);
    assert_eq!(of(&u, PiiType::Address).len(), 1);
    assert_eq!(of(&u, PiiType::CnMobile).len(), 1);
}

#[test]
fn gbk_text_and_csv_are_decoded_with_offsets_in_the_file() {
    // What Excel on Chinese Windows writes: GBK. Names and addresses are only findable
    // decoded; offsets must still be byte offsets in the GBK file.
    let dir = tempfile::tempdir().unwrap();
    let gbk = |s: &str| encoding_rs::GBK.encode(s).0.into_owned();
    let note = format!("客户张伟来电，手机{MOBILE}，地址北京市朝阳区建国路88号3栋2单元501室。\n");
    let t = write(dir.path(), "note.txt", &gbk(&note));
    let csv = format!("姓名,手机号码\n李娜,{MOBILE}\n");
    let c = write(dir.path(), "export.csv", &gbk(&csv));
    let s = scan(&[dir.path().to_path_buf()], &Options::default());
    let raw_t = std::fs::read(&t).unwrap();
    let raw_c = std::fs::read(&c).unwrap();
    let in_file = |raw: &[u8], f: &Finding| {
        encoding_rs::GBK
            .decode_without_bom_handling(&raw[f.start as usize..f.end as usize])
            .0
            .into_owned()
    };
    let of = |p: &Path, ty: PiiType| {
        s.findings
            .iter()
            .find(|f| *f.path == *p.to_string_lossy() && f.ty == ty)
            .cloned()
            .unwrap_or_else(|| panic!("{} in {}", ty.id(), p.display()))
    };
    let m = of(&t, PiiType::CnMobile);
    same(&in_file(&raw_t, &m), MOBILE, "GBK note mobile");
    assert_eq!(m.column, "客户张伟来电，手机".chars().count() as u64 + 1);
    let n = of(&t, PiiType::PersonName);
    same(&in_file(&raw_t, &n), "张伟", "GBK note name");
    let a = of(&t, PiiType::Address);
    assert!(in_file(&raw_t, &a).starts_with("北京市朝阳区"));
    let n = of(&c, PiiType::PersonName);
    assert_eq!(n.field.as_deref(), Some("姓名"));
    same(&in_file(&raw_c, &n), "李娜", "GBK CSV name");
    let m = of(&c, PiiType::CnMobile);
    assert_eq!(m.field.as_deref(), Some("手机号码"));
    assert_eq!((m.line, m.column), (2, 4));
    same(&in_file(&raw_c, &m), MOBILE, "GBK CSV mobile");
}

#[test]
fn context_on_the_line_before_a_block_cut_still_counts() {
    // A landline is reported only with a context word before it; here the word ends the
    // line before the one the number starts, and the file is cut into blocks exactly
    // between the two (the rest of that line runs on without a newline past where the
    // block's buffer ends). The finding must be the same as in a small file.
    let dir = tempfile::tempdir().unwrap();
    let small = "联系电话：\n010-62345678，请回电\n";
    let s = scan(
        &[write(dir.path(), "small.log", small.as_bytes())],
        &Options::default(),
    );
    assert_eq!(s.findings.len(), 1, "the context word is enough");
    assert_eq!(s.findings[0].ty.id(), "cn_landline");
    let bare = scan(
        &[write(
            dir.path(),
            "bare.log",
            "010-62345678，请回电\n".as_bytes(),
        )],
        &Options::default(),
    );
    assert!(bare.findings.is_empty(), "and needed");

    let filler = "普通的一行文字，没有任何个人信息。 ordinary words\n";
    let mut text = String::new();
    while text.len() + filler.len() < (1 << 20) - 100 {
        text.push_str(filler);
    }
    text.push_str("联系电话：\n");
    let at = text.len();
    let line = text.matches('\n').count() as u64 + 1;
    text.push_str("010-62345678，请回电");
    while text.len() < at + (300 << 10) {
        text.push_str("没有换行的一段很长的文字，");
    }
    text.push('\n');
    let big = write(dir.path(), "big.log", text.as_bytes());
    let s = scan(&[big], &Options::default());
    let got: Vec<(u64, u64, &str)> = s
        .findings
        .iter()
        .map(|f| (f.line, f.start, f.ty.id()))
        .collect();
    assert_eq!(got, [(line, at as u64, "cn_landline")]);
}
