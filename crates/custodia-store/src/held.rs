//! PostgreSQL connections for the hot paths (record reads and blind-index searches in one
//! set, audit appends in a set of their own), kept beside sqlx's pool rather than in it.
//!
//! sqlx 0.8 pings every connection handed back to its pool (`PoolConnection::return_to_pool`
//! sends a `Sync` and waits for PostgreSQL's `ReadyForQuery`), whatever the pool's options
//! say: one more network round trip, and one more wake-up of the server's backend, per
//! query. A record read over HTTP measured 2.2 `sendto` calls per request, half of them that
//! ping (2026-11-30). The ping guards against a connection left mid-protocol by a cancelled
//! query; here a connection goes back to the idle list only when its query completed
//! ([`Done::done`]), and is closed otherwise — a request timeout, a dropped future or an
//! error — so it never carries a half-read reply into the next query (sqlx drains the rest
//! of a completed query's reply at the start of the next one). A set made with
//! [`PgConns::ping_after`] (the audit appender's) pings only a connection that idled past
//! a limit, never one in steady use.

use crate::Result;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// Whether `e` means the connection itself is gone (closed by the server, reset, cut),
/// rather than the query failing on a live connection.
pub(crate) fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        // 57P01 admin_shutdown (terminated by the administrator or a restart), 57P02
        // crash_shutdown, 57P03 cannot_connect_now.
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}

/// A connection taken for one query; see the module documentation.
pub(crate) trait Done {
    /// The query completed: the connection may serve the next one.
    fn done(self);
}

impl Done for sqlx::pool::PoolConnection<sqlx::Sqlite> {
    fn done(self) {}
}

/// Idle longer than this, a connection is closed rather than reused: a firewall or the
/// server's `idle_session_timeout` may have dropped it meanwhile (sqlx's pool closes its
/// own after 10 minutes idle).
const MAX_IDLE: Duration = Duration::from_secs(300);

pub(crate) struct PgConns {
    /// Idle connections, each with the time it was last handed back.
    idle: std::sync::Mutex<Vec<(PgConnection, std::time::Instant)>>,
    permits: tokio::sync::Semaphore,
    options: PgConnectOptions,
    /// How long a query waits for a connection when all are busy.
    wait: Duration,
    /// [`MAX_IDLE`], shorter in tests.
    max_idle: Duration,
    /// A connection idle for longer is pinged before it is handed out (see
    /// [`PgConns::ping_after`]).
    ping_after: Option<Duration>,
}

pub(crate) struct PgHeld<'a> {
    conn: Option<PgConnection>,
    owner: &'a PgConns,
    completed: bool,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl PgConns {
    pub(crate) fn new(options: PgConnectOptions, max: usize, wait: Duration) -> PgConns {
        PgConns {
            idle: std::sync::Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(max),
            options,
            wait,
            max_idle: MAX_IDLE,
            ping_after: None,
        }
    }

    /// Pings a connection idle for longer than `idle` before handing it out, and replaces it
    /// (and drops the other idle ones) if the ping fails. For a query that cannot be retried
    /// (the audit append: a lost insert may have committed), so that the first one after a
    /// database restart does not meet a dead connection; under load connections are never
    /// idle that long and nothing is pinged.
    pub(crate) fn ping_after(mut self, idle: Duration) -> PgConns {
        self.ping_after = Some(idle);
        self
    }

    /// An idle connection, or a new one if none is idle and fewer than the maximum are open.
    pub(crate) async fn get(&self) -> Result<PgHeld<'_>> {
        let permit = tokio::time::timeout(self.wait, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = {
            let mut idle = self.idle.lock().expect("idle connections");
            let now = std::time::Instant::now();
            idle.retain(|(_, since)| now.duration_since(*since) < self.max_idle);
            idle.pop()
        };
        let idle = match (idle, self.ping_after) {
            (Some((mut c, since)), Some(after)) if since.elapsed() > after => {
                // Bounded like the wait for a permit: a connection that a firewall dropped
                // silently would otherwise hold the permit until TCP gives up.
                if let Ok(Ok(())) = tokio::time::timeout(self.wait, c.ping()).await {
                    Some(c)
                } else {
                    self.clear_idle();
                    None
                }
            }
            (idle, _) => idle.map(|(c, _)| c),
        };
        let conn = match idle {
            Some(c) => c,
            None => PgConnection::connect_with(&self.options).await?,
        };
        Ok(PgHeld {
            conn: Some(conn),
            owner: self,
            completed: false,
            _permit: permit,
        })
    }
}

impl PgConns {
    /// Closes every idle connection (one was found lost: the rest likely were too).
    pub(crate) fn clear_idle(&self) {
        self.idle.lock().expect("idle connections").clear();
    }
}

impl Done for PgHeld<'_> {
    fn done(mut self) {
        self.completed = true;
    }
}

impl Drop for PgHeld<'_> {
    fn drop(&mut self) {
        if let (true, Some(conn)) = (self.completed, self.conn.take()) {
            self.owner
                .idle
                .lock()
                .expect("idle connections")
                .push((conn, std::time::Instant::now()));
        }
        // Otherwise the connection is dropped, which closes its socket.
    }
}

impl Deref for PgHeld<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl DerefMut for PgHeld<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("held until dropped")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    async fn backend_pid(conns: &PgConns) -> i32 {
        let mut c = conns.get().await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        c.done();
        pid
    }

    /// A completed query's connection serves the next query (no reconnect); a
    /// cancelled one's is closed, and the query after it gets a clean connection.
    #[tokio::test]
    async fn completed_connections_are_reused_and_cancelled_ones_closed() {
        let Ok(url) = std::env::var("CUSTODIA_TEST_DATABASE_URL") else {
            eprintln!("CUSTODIA_TEST_DATABASE_URL not set: skipping");
            return;
        };
        let conns = PgConns::new(
            PgConnectOptions::from_str(&url).unwrap(),
            2,
            Duration::from_secs(10),
        );
        let first = backend_pid(&conns).await;
        assert_eq!(
            backend_pid(&conns).await,
            first,
            "the connection was reused"
        );

        // A query cut off by a timeout: its reply is still on the way.
        let mut c = conns.get().await.unwrap();
        let slow = sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(0.3)").fetch_one(&mut *c);
        assert!(tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err());
        drop(c);
        assert!(conns.idle.lock().unwrap().is_empty(), "not handed back");
        let mut c = conns.get().await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_ne!(pid, first, "a new connection, not the cancelled one");
        // It answers its own query, not the cancelled one's 7.
        let n: i32 = sqlx::query_scalar("SELECT 42")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(n, 42);
        c.done();

        // A connection idle past the limit is closed, not reused.
        let mut stale = PgConns::new(
            PgConnectOptions::from_str(&url).unwrap(),
            2,
            Duration::from_secs(10),
        );
        stale.max_idle = Duration::from_millis(100);
        let before = backend_pid(&stale).await;
        assert_eq!(backend_pid(&stale).await, before);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_ne!(
            backend_pid(&stale).await,
            before,
            "reconnected after idling"
        );

        // The only connection busy: the next caller times out instead of opening another.
        let short = PgConns::new(
            PgConnectOptions::from_str(&url).unwrap(),
            1,
            Duration::from_millis(100),
        );
        let held = short.get().await.unwrap();
        assert!(matches!(
            short.get().await,
            Err(crate::StoreError::Db(sqlx::Error::PoolTimedOut))
        ));
        drop(held);

        // Pinged after idling: a live connection is kept; one the database dropped meanwhile
        // is replaced before the query, which then succeeds (without the ping it would fail:
        // checked just below on a set without it).
        let pinged = PgConns::new(
            PgConnectOptions::from_str(&url).unwrap(),
            1,
            Duration::from_secs(10),
        )
        .ping_after(Duration::from_millis(50));
        let unpinged = PgConns::new(
            PgConnectOptions::from_str(&url).unwrap(),
            1,
            Duration::from_secs(10),
        );
        let kept = backend_pid(&pinged).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            backend_pid(&pinged).await,
            kept,
            "a live connection is kept"
        );
        let doomed = backend_pid(&unpinged).await;
        let mut admin = PgConnection::connect(&url).await.unwrap();
        for pid in [kept, doomed] {
            // (With a timeout it waits until the backend has exited.)
            let cut: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
                .bind(pid)
                .fetch_one(&mut admin)
                .await
                .unwrap();
            assert!(cut, "backend {pid} terminated");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let replaced = backend_pid(&pinged).await;
        assert_ne!(replaced, kept, "the dropped connection was replaced");
        let mut c = unpinged.get().await.unwrap();
        let lost = sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut *c)
            .await
            .unwrap_err();
        assert!(
            connection_lost(&lost),
            "without the ping the query meets the dead connection"
        );
        drop(c);
        crate::testing::mark_suite_passed("custodia-store held_connections_on_postgres");
    }
}
