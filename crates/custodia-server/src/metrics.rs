//! Prometheus metrics, kept as plain counters: labels are route templates and status codes,
//! never anything a client typed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// (method, route template, status) → (count, total seconds).
type RequestCounters = BTreeMap<(String, String, u16), (u64, f64)>;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<RequestCounters>,
    quota_exceeded: std::sync::atomic::AtomicU64,
}

impl Metrics {
    pub fn quota_exceeded(&self) {
        self.quota_exceeded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut m = self.requests.lock().expect("metrics lock");
        let e = m
            .entry((method.to_string(), route.to_string(), status))
            .or_insert((0, 0.0));
        e.0 += 1;
        e.1 += seconds;
    }

    pub fn render(&self, records: &[(String, i64)], policy_reloads: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP custodia_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE custodia_http_requests_total counter\n");
        let m = self.requests.lock().expect("metrics lock");
        for ((method, route, status), (n, _)) in m.iter() {
            let _ = writeln!(
                out,
                "custodia_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP custodia_http_request_duration_seconds_sum Time spent serving requests.\n",
        );
        out.push_str("# TYPE custodia_http_request_duration_seconds_sum counter\n");
        for ((method, route, status), (_, s)) in m.iter() {
            let _ = writeln!(
                out,
                "custodia_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {s:.6}"
            );
        }
        drop(m);
        out.push_str("# HELP custodia_records Records stored per collection.\n");
        out.push_str("# TYPE custodia_records gauge\n");
        for (c, n) in records {
            let _ = writeln!(out, "custodia_records{{collection=\"{c}\"}} {n}");
        }
        use std::sync::atomic::Ordering::Relaxed;
        let _ = writeln!(
            out,
            "# HELP custodia_quota_exceeded_total Requests refused by a bulk-harvest quota.\n\
             # TYPE custodia_quota_exceeded_total counter\ncustodia_quota_exceeded_total {}\n\
             # HELP custodia_policy_reloads_total Successful policy reloads.\n\
             # TYPE custodia_policy_reloads_total counter\ncustodia_policy_reloads_total {}",
            self.quota_exceeded.load(Relaxed),
            policy_reloads
        );
        let _ = writeln!(
            out,
            "# TYPE custodia_build_info gauge\ncustodia_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}
