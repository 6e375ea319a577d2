//! Databases: every table (or the chosen ones), a sample of rows each, every column
//! classified. Values are read as text by the database itself (`::text`, `CAST(… AS
//! CHAR)`, `CAST(… AS TEXT)`), so any column type can be examined.

use crate::{Event, Options, ScanError, Sender};
use futures_util::StreamExt;
use sqlx::Row;
use std::collections::BTreeMap;

/// Whether a scan target names a database rather than a path.
pub fn is_database_url(t: &str) -> bool {
    [
        "postgres://",
        "postgresql://",
        "mysql://",
        "mariadb://",
        "sqlite:",
    ]
    .iter()
    .any(|p| t.starts_with(p))
}

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

/// A table's columns, how to count its rows and how to read them as text.
struct Table {
    shown: String,
    columns: Vec<String>,
    d: Dialect,
    /// The schema-qualified, quoted table name.
    from: String,
    /// The planner's row estimate, where the database keeps one: a query and the catalog
    /// names bound to it.
    estimate: Option<(&'static str, Vec<String>)>,
    /// The columns as text, cut at [`MAX_VALUE`] characters.
    list: String,
}

fn quote(d: Dialect, ident: &str) -> String {
    match d {
        Dialect::MySql => format!("`{}`", ident.replace('`', "``")),
        _ => format!("\"{}\"", ident.replace('"', "\"\"")),
    }
}

/// Characters of a value examined.
const MAX_VALUE: u32 = 65_536;

/// How many times the sample size the random filter aims to keep: room for a row
/// estimate that is several times too high (a table emptied since it was last analyzed).
const OVERSAMPLE: u64 = 10;

impl Table {
    fn new(
        d: Dialect,
        schema: Option<&str>,
        table: &str,
        shown: String,
        cols: Vec<String>,
    ) -> Table {
        let from = match schema {
            Some(s) => format!("{}.{}", quote(d, s), quote(d, table)),
            None => quote(d, table),
        };
        let estimate = match d {
            // -1 until the table is first analyzed (autovacuum or ANALYZE).
            Dialect::Postgres => Some((
                "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n \
                 ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                vec![schema.unwrap_or("public").to_string(), table.to_string()],
            )),
            Dialect::MySql => Some((
                "SELECT CAST(TABLE_ROWS AS SIGNED) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                vec![table.to_string()],
            )),
            Dialect::Sqlite => None,
        };
        Table {
            list: column_list(d, &cols),
            shown,
            columns: cols,
            d,
            from,
            estimate,
        }
    }

    fn count_sql(&self) -> String {
        format!("SELECT COUNT(*) FROM {}", self.from)
    }

    /// The sample's query for a table of `rows` rows: all of them when there are at most
    /// `n`; otherwise `n` drawn at random — every row is kept with a probability that
    /// leaves about [`OVERSAMPLE`]·n candidates (so that a stale row estimate still leaves
    /// n), and n of those are taken in random order.
    fn sample_sql(&self, rows: i64, n: u64) -> String {
        let select = format!("SELECT {} FROM {}", self.list, self.from);
        if rows <= i64::try_from(n).unwrap_or(i64::MAX) {
            return format!("{select} LIMIT {n}");
        }
        let random = match self.d {
            Dialect::Postgres => "random()",
            Dialect::MySql => "RAND()",
            // random() is a 64-bit integer there: 53 of its bits as a fraction in [0, 1).
            Dialect::Sqlite => "((random() >> 11) & 9007199254740991) / 9007199254740992.0",
        };
        let keep = (OVERSAMPLE as f64 * n as f64) / rows as f64;
        if keep >= 1.0 {
            format!("{select} ORDER BY {random} LIMIT {n}")
        } else {
            // In exponent form: a fixed number of decimals would round a tiny share to 0.
            format!("{select} WHERE {random} < {keep:e} ORDER BY {random} LIMIT {n}")
        }
    }
}

/// The columns to read, as text.
fn column_list(d: Dialect, cols: &[String]) -> String {
    let list: Vec<String> = cols
        .iter()
        // At most MAX_VALUE characters of each value: a 1 GB text or blob column must not
        // be read whole.
        .map(|c| match d {
            Dialect::Postgres => format!("left({}::text, {MAX_VALUE})", quote(d, c)),
            Dialect::MySql => format!("SUBSTRING(CAST({} AS CHAR), 1, {MAX_VALUE})", quote(d, c)),
            Dialect::Sqlite => format!("substr(CAST({} AS TEXT), 1, {MAX_VALUE})", quote(d, c)),
        })
        .collect();
    list.join(", ")
}

/// What a URL may show: credentials are never echoed, whether in the user-info part or in
/// query parameters (`?password=…`), which are dropped.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, _)) => (b, "?…"),
        None => (url, ""),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &base[..s], &base[at + 1..]),
        _ => base.to_string(),
    };
    format!("{base}{query}")
}

fn db_err(url: &str, e: sqlx::Error) -> ScanError {
    // A database's own error message may quote a value (data errors): only its code is
    // shown. Connection and configuration errors name the server, never the password.
    let what = match &e {
        sqlx::Error::Database(d) => format!(
            "database error {}",
            d.code()
                .map(|c| c.into_owned())
                .unwrap_or_else(|| "(no code)".into())
        ),
        sqlx::Error::Configuration(_) => "the URL is not valid for this database".into(),
        other => other.to_string(),
    };
    ScanError(format!("{}: {what}", redact_url(url)))
}

/// Scans a database: every table's sample, findings per value, one report per column.
pub async fn scan_database(url: &str, opts: &Options, tx: &Sender) -> Result<(), ScanError> {
    let url_fixed = url.replacen("mariadb://", "mysql://", 1);
    if url.starts_with("postgres") {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|e| db_err(url, e))?;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT c.table_schema::text, c.table_name::text, c.column_name::text \
             FROM information_schema.columns c JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE t.table_type = 'BASE TABLE' \
               AND c.table_schema NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY c.table_schema, c.table_name, c.ordinal_position",
        )
        .fetch_all(&pool)
        .await
        .map_err(|e| db_err(url, e))?;
        let tables = group(rows, Dialect::Postgres, opts);
        return scan_tables(&pool, url, tables, opts, tx).await;
    }
    if url.starts_with("mysql") || url.starts_with("mariadb") {
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(1)
            .connect(&url_fixed)
            .await
            .map_err(|e| db_err(url, e))?;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT CAST(c.table_schema AS CHAR), CAST(c.table_name AS CHAR), \
                    CAST(c.column_name AS CHAR) \
             FROM information_schema.columns c JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE t.table_type = 'BASE TABLE' AND c.table_schema = DATABASE() \
             ORDER BY c.table_name, c.ordinal_position",
        )
        .fetch_all(&pool)
        .await
        .map_err(|e| db_err(url, e))?;
        let tables = group(rows, Dialect::MySql, opts);
        return scan_tables(&pool, url, tables, opts, tx).await;
    }
    let opts_sqlite = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .map_err(|e| db_err(url, e))?
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts_sqlite)
        .await
        .map_err(|e| db_err(url, e))?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .map_err(|e| db_err(url, e))?;
    let mut rows = vec![];
    for t in names {
        let cols: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
            .bind(&t)
            .fetch_all(&pool)
            .await
            .map_err(|e| db_err(url, e))?;
        for c in cols {
            rows.push(("main".to_string(), t.clone(), c));
        }
    }
    let tables = group(rows, Dialect::Sqlite, opts);
    scan_tables(&pool, url, tables, opts, tx).await
}

/// (schema, table, column) rows in order → tables, keeping only the chosen ones.
fn group(rows: Vec<(String, String, String)>, d: Dialect, opts: &Options) -> Vec<Table> {
    let mut by: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut order = vec![];
    for (s, t, c) in rows {
        let key = (s, t);
        if !by.contains_key(&key) {
            order.push(key.clone());
        }
        by.entry(key).or_default().push(c);
    }
    order
        .into_iter()
        .filter_map(|(s, t)| {
            let shown = match d {
                Dialect::Postgres if s != "public" => format!("{s}.{t}"),
                _ => t.clone(),
            };
            let chosen =
                opts.tables.is_empty() || opts.tables.iter().any(|w| *w == shown || *w == t);
            if !chosen {
                return None;
            }
            let columns = by.remove(&(s.clone(), t.clone())).unwrap_or_default();
            let schema = match d {
                Dialect::Postgres => Some(s.as_str()),
                _ => None,
            };
            Some(Table::new(d, schema, &t, shown, columns))
        })
        .collect()
}

/// Every `--table` must name a table: a typo must not let a pipeline gate pass.
fn check_chosen(tables: &[Table], opts: &Options) -> Result<(), ScanError> {
    for want in &opts.tables {
        let found = tables
            .iter()
            .any(|t| t.shown == *want || t.shown.rsplit('.').next() == Some(want.as_str()));
        if !found {
            return Err(ScanError(format!("--table {want}: no such table")));
        }
    }
    Ok(())
}

async fn scan_tables<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    url: &str,
    tables: Vec<Table>,
    opts: &Options,
    tx: &Sender,
) -> Result<(), ScanError>
where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> Option<String>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> Option<i64>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    check_chosen(&tables, opts)?;
    for t in tables {
        let rows = match table_rows(pool, &t, opts.sample).await {
            Ok(rows) => rows,
            Err(e) => {
                let _ = tx.send(Event::Skipped {
                    path: t.shown.clone(),
                    reason: db_err(url, e).0,
                });
                continue;
            }
        };
        let sql = t.sample_sql(rows, opts.sample);
        let mut tallies = vec![crate::ColumnTally::default(); t.columns.len()];
        let mut bytes = 0u64;
        let mut stream = sqlx::query(&sql).fetch(pool);
        let mut n = 0u64;
        let mut failed = None;
        let contexts: Vec<custodia_detect::find::FieldContext> = t
            .columns
            .iter()
            .map(|c| custodia_detect::find::FieldContext::new(c))
            .collect();
        let mut out = crate::Out::sending(tx, opts);
        let path: std::sync::Arc<str> = t.shown.as_str().into();
        let names: Vec<std::sync::Arc<str>> = t.columns.iter().map(|c| c.as_str().into()).collect();
        while let Some(row) = stream.next().await {
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            n += 1;
            for i in 0..t.columns.len() {
                let v: Option<String> = row.try_get(i).unwrap_or(None);
                let Some(v) = v else {
                    tallies[i].observe(None, &[]);
                    continue;
                };
                bytes += v.len() as u64;
                let mut seen = vec![];
                // A detector bug costs this value, not the scan (files get the same per file).
                let found =
                    std::panic::catch_unwind(|| custodia_detect::find::find_in(&contexts[i], &v))
                        .unwrap_or_default();
                for d in found {
                    if d.confidence < opts.min_confidence {
                        continue;
                    }
                    if !seen.contains(&d.ty) {
                        seen.push(d.ty);
                    }
                    let span = (d.start as u64, d.end as u64);
                    out.add(&path, (n, i as u64 + 1), span, &d, &v, Some(&names[i]));
                }
                tallies[i].observe(Some(&v), &seen);
            }
        }
        drop(stream);
        out.flush();
        drop(out);
        if let Some(e) = failed {
            let _ = tx.send(Event::Skipped {
                path: t.shown.clone(),
                reason: db_err(url, e).0,
            });
            continue;
        }
        for (col, tally) in t.columns.iter().zip(tallies) {
            let _ = tx.send(Event::Column(tally.report(&t.shown, col)));
        }
        let _ = tx.send(Event::Done {
            path: t.shown,
            bytes,
        });
    }
    Ok(())
}

/// How many rows a table has: the planner's estimate when it is well above the sample
/// (a random sample reads the whole table anyway), otherwise counted — an estimate can be
/// missing (never analyzed) or stale (InnoDB's is refreshed in the background).
async fn table_rows<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    t: &Table,
    n: u64,
) -> Result<i64, sqlx::Error>
where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> Option<i64>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    if let Some((sql, names)) = &t.estimate {
        let mut q = sqlx::query_scalar::<DB, Option<i64>>(sql);
        for name in names {
            q = q.bind(name.clone());
        }
        // No estimate (or none readable): counted instead.
        if let Ok(Some(Some(e))) = q.fetch_optional(pool).await {
            let enough = i64::try_from(n.saturating_mul(OVERSAMPLE)).unwrap_or(i64::MAX);
            if e > enough {
                return Ok(e);
            }
        }
    }
    let count: Option<i64> = sqlx::query_scalar(&t.count_sql()).fetch_one(pool).await?;
    Ok(count.unwrap_or(0))
}

/// Column names that say "authentication data" (JR/T 0171 C3): never readable back.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password", "passwd", "pwd", "pin", "cvv", "cvn", "cvc", "secret", "密码", "口令",
    ]
    .iter()
    .any(|w| {
        n == *w
            || n.ends_with(&format!("_{w}"))
            || n.starts_with(&format!("{w}_"))
            || (w.len() > 3 && n.contains(w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognized_and_redacted() {
        assert!(is_database_url("postgres://u:p@h/db"));
        assert!(is_database_url("sqlite://x.db"));
        assert!(!is_database_url("./exports"));
        assert_eq!(
            redact_url("mysql://root:secret@127.0.0.1/test"),
            "mysql://…@127.0.0.1/test"
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        let t = Table::new(Dialect::MySql, None, "a`b", "a".into(), vec!["c".into()]);
        assert_eq!(
            t.sample_sql(5, 5),
            "SELECT SUBSTRING(CAST(`c` AS CHAR), 1, 65536) FROM `a``b` LIMIT 5"
        );
        // Catalog names are bound, never spliced into the estimate's SQL.
        let (sql, names) = t.estimate.unwrap();
        assert!(sql.ends_with("TABLE_NAME = ?") && names == ["a`b"], "{sql}");
        let t = Table::new(
            Dialect::Postgres,
            Some("s"),
            "t'",
            "t".into(),
            vec!["x\"y".into()],
        );
        assert_eq!(
            t.sample_sql(1, 1),
            "SELECT left(\"x\"\"y\"::text, 65536) FROM \"s\".\"t'\" LIMIT 1"
        );
        let (sql, names) = t.estimate.unwrap();
        assert!(
            sql.ends_with("c.relname = $2") && names == ["s", "t'"],
            "{sql}"
        );
    }

    #[test]
    fn samples_are_drawn_at_random_from_larger_tables() {
        let t = Table::new(Dialect::Sqlite, None, "t", "t".into(), vec!["c".into()]);
        let random = "((random() >> 11) & 9007199254740991) / 9007199254740992.0";
        assert!(t.sample_sql(100, 100).ends_with("FROM \"t\" LIMIT 100"));
        // Up to 10n rows: all are candidates, in random order.
        let sql = t.sample_sql(900, 100);
        assert!(
            sql.ends_with(&format!("FROM \"t\" ORDER BY {random} LIMIT 100")),
            "{sql}"
        );
        // More: each row kept with probability 10n / rows first, written so that a tiny
        // share does not round to nothing.
        let sql = t.sample_sql(4_000_000, 1000);
        let filtered = format!("FROM \"t\" WHERE {random} < 2.5e-3 ORDER BY {random} LIMIT 1000");
        assert!(sql.ends_with(&filtered), "{sql}");
        let sql = t.sample_sql(i64::MAX, 1);
        assert!(sql.contains(" < 1.0842021724855044e-18 "), "{sql}");
        // A sample size beyond any table is all of it.
        assert!(t
            .sample_sql(i64::MAX, u64::MAX)
            .ends_with(&format!("LIMIT {}", u64::MAX)));
    }

    #[test]
    fn secret_columns() {
        assert!(is_secret_name("password_hash"));
        assert!(is_secret_name("登录密码"));
        assert!(is_secret_name("card_cvv"));
        assert!(!is_secret_name("pinyin_name"));
        assert!(!is_secret_name("mobile"));
    }
}
