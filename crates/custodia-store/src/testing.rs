//! Test support (feature `test-support`): a fresh PostgreSQL database per test run, so the
//! shared suites can run against the real server without interfering with each other. The
//! suite marker is also there for this crate's own tests.

/// A database created for one test and dropped by [`TempPg::drop_db`].
#[cfg(feature = "test-support")]
pub struct TempPg {
    pub url: String,
    admin_url: String,
    name: String,
}

#[cfg(feature = "test-support")]
impl TempPg {
    /// Creates `custodia_t_<random>` on the server named by `admin_url`.
    pub async fn create(admin_url: &str) -> TempPg {
        use rand::Rng;
        let suffix: String = (0..12)
            .map(|_| (b'a' + rand::thread_rng().gen_range(0..26)) as char)
            .collect();
        let name = format!("custodia_t_{suffix}");
        let admin = sqlx::PgPool::connect(admin_url)
            .await
            .expect("connect to CUSTODIA_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        TempPg {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_string(),
            name,
        }
    }

    pub async fn drop_db(self) {
        let admin = sqlx::PgPool::connect(&self.admin_url)
            .await
            .expect("connect to CUSTODIA_TEST_DATABASE_URL");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&admin)
        .await
        .expect("drop test database");
    }
}

/// The same server URL with another database name.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{base}/{db}{query}")
}

/// Records that a PostgreSQL suite ran to completion, in the file named by
/// `CUSTODIA_TEST_PG_MARKER` (set by `.ci/run`, which fails when a line is missing).
pub fn mark_suite_passed(suite: &str) {
    use std::io::Write;
    if let Ok(path) = std::env::var("CUSTODIA_TEST_PG_MARKER") {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .expect("open CUSTODIA_TEST_PG_MARKER");
        writeln!(f, "{suite} passed").expect("write CUSTODIA_TEST_PG_MARKER");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/test?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }
}
