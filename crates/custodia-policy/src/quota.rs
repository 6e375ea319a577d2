//! Bulk-harvest limits: how many records one principal may be shown per search, per
//! rolling hour and per rolling day, and how many field values in clear per rolling day.
//!
//! Usage is counted in one-minute buckets per principal, so windows roll smoothly and a
//! refusal can say exactly when enough of the window will have expired. Counters live in
//! the serving node's memory: a restart or a second node starts its own count (see the
//! README's limits).

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The limits of one role. Zero means "no records at all".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Records returned by one search at most (larger `limit`s are cut to this).
    pub search_limit: u64,
    pub records_per_hour: u64,
    pub records_per_day: u64,
    pub clear_fields_per_day: u64,
}

impl Limits {
    const fn new(search: u64, hour: u64, day: u64, clear: u64) -> Limits {
        Limits {
            search_limit: search,
            records_per_hour: hour,
            records_per_day: day,
            clear_fields_per_day: clear,
        }
    }

    fn max(self, o: Limits) -> Limits {
        Limits {
            search_limit: self.search_limit.max(o.search_limit),
            records_per_hour: self.records_per_hour.max(o.records_per_hour),
            records_per_day: self.records_per_day.max(o.records_per_day),
            clear_fields_per_day: self.clear_fields_per_day.max(o.clear_fields_per_day),
        }
    }
}

/// Per-role limits; a principal with several roles gets, for each limit, the largest of
/// its roles'. Roles without an entry get `default`; service accounts use role `service`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub default: Limits,
    #[serde(default)]
    pub roles: HashMap<String, Limits>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            default: Limits::new(20, 100, 500, 200),
            roles: HashMap::from([
                ("cs_agent".to_string(), Limits::new(20, 120, 600, 300)),
                (
                    "account_manager".to_string(),
                    Limits::new(20, 150, 800, 500),
                ),
                (
                    "compliance_officer".to_string(),
                    Limits::new(20, 200, 1000, 500),
                ),
                ("analyst".to_string(), Limits::new(20, 200, 1000, 0)),
                (
                    "service".to_string(),
                    Limits::new(100, 100_000, 1_000_000, 1_000_000),
                ),
            ]),
        }
    }
}

impl QuotaConfig {
    pub fn limits_for<'a>(&self, roles: impl IntoIterator<Item = &'a str>) -> Limits {
        let mut out: Option<Limits> = None;
        for r in roles {
            let l = self.roles.get(r).copied().unwrap_or(self.default);
            out = Some(out.map_or(l, |o| o.max(l)));
        }
        out.unwrap_or(self.default)
    }
}

/// Which limit a request would break, and when it will have room again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// `records_per_hour`, `records_per_day` or `clear_fields_per_day`.
    pub limit_name: &'static str,
    pub limit: u64,
    /// Unix seconds at which enough of the window has expired for this request.
    pub reset_at: i64,
}

/// (minute since the epoch, records, clear fields).
type Bucket = (i64, u64, u64);
/// Which count of a bucket a limit is about.
type Pick = fn(&Bucket) -> u64;

#[derive(Default)]
struct Usage {
    /// (minute since the epoch, records, clear fields), oldest first, last 24 h only.
    buckets: VecDeque<Bucket>,
}

const DAY_MINUTES: i64 = 24 * 60;

impl Usage {
    fn expire(&mut self, minute: i64) {
        while self
            .buckets
            .front()
            .is_some_and(|b| b.0 <= minute - DAY_MINUTES)
        {
            self.buckets.pop_front();
        }
    }

    fn used(&self, since_minute: i64, pick: Pick) -> u64 {
        self.buckets
            .iter()
            .filter(|b| b.0 > since_minute)
            .map(pick)
            .sum()
    }

    /// The first second at which the window of `window` minutes will hold `need` more.
    fn reset_at(&self, minute: i64, window: i64, limit: u64, need: u64, pick: Pick) -> i64 {
        let mut used = self.used(minute - window, pick);
        for b in self.buckets.iter().filter(|b| b.0 > minute - window) {
            used -= pick(b);
            if used + need <= limit {
                return (b.0 + window) * 60;
            }
        }
        (minute + window) * 60
    }
}

/// The running counters of every principal.
pub struct Quotas {
    pub config: QuotaConfig,
    usage: Mutex<HashMap<String, Usage>>,
}

impl Quotas {
    pub fn new(config: QuotaConfig) -> Quotas {
        Quotas {
            config,
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// Counts `records` records and `clear` clear field values for `who` if that stays
    /// within `limits`; otherwise counts nothing and says which limit would break.
    pub fn consume(
        &self,
        who: &str,
        limits: &Limits,
        records: u64,
        clear: u64,
        now_unix: i64,
    ) -> Result<(), Exceeded> {
        let minute = now_unix.div_euclid(60);
        let mut all = self.usage.lock().expect("quota lock");
        let u = all.entry(who.to_string()).or_default();
        u.expire(minute);
        let rec = |b: &Bucket| b.1;
        let clr = |b: &Bucket| b.2;
        let checks: [(&'static str, u64, i64, u64, Pick); 3] = [
            (
                "records_per_hour",
                limits.records_per_hour,
                60,
                records,
                rec,
            ),
            (
                "records_per_day",
                limits.records_per_day,
                DAY_MINUTES,
                records,
                rec,
            ),
            (
                "clear_fields_per_day",
                limits.clear_fields_per_day,
                DAY_MINUTES,
                clear,
                clr,
            ),
        ];
        for (name, limit, window, need, pick) in checks {
            if need == 0 {
                continue;
            }
            if u.used(minute - window, pick) + need > limit {
                return Err(Exceeded {
                    limit_name: name,
                    limit,
                    reset_at: u.reset_at(minute, window, limit, need, pick),
                });
            }
        }
        match u.buckets.back_mut() {
            Some(b) if b.0 == minute => {
                b.1 += records;
                b.2 += clear;
            }
            _ => u.buckets.push_back((minute, records, clear)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::new(20, 10, 15, 5)
    }

    #[test]
    fn hourly_window_rolls() {
        let q = Quotas::new(QuotaConfig::default());
        let t0 = 1_700_000_000 - 1_700_000_000 % 60;
        for _ in 0..10 {
            q.consume("u", &limits(), 1, 0, t0).unwrap();
        }
        let e = q.consume("u", &limits(), 1, 0, t0 + 30).unwrap_err();
        assert_eq!(e.limit_name, "records_per_hour");
        assert_eq!(e.reset_at, t0 + 3600);
        // Another principal has its own count.
        q.consume("v", &limits(), 1, 0, t0).unwrap();
        // An hour later the first ten have left the window, but the day still counts them.
        for _ in 0..5 {
            q.consume("u", &limits(), 1, 0, t0 + 3600).unwrap();
        }
        let e = q.consume("u", &limits(), 1, 0, t0 + 3600).unwrap_err();
        assert_eq!(e.limit_name, "records_per_day");
        assert_eq!(e.reset_at, t0 + 86_400);
        q.consume("u", &limits(), 1, 0, t0 + 86_400).unwrap();
    }

    #[test]
    fn refused_requests_count_nothing() {
        let q = Quotas::new(QuotaConfig::default());
        let t = 1_800_000_000;
        assert!(q.consume("u", &limits(), 1, 6, t).is_err());
        q.consume("u", &limits(), 1, 5, t).unwrap();
        let e = q.consume("u", &limits(), 1, 1, t).unwrap_err();
        assert_eq!(e.limit_name, "clear_fields_per_day");
        assert_eq!(e.limit, 5);
    }

    #[test]
    fn several_roles_take_the_largest_limit() {
        let c = QuotaConfig::default();
        let l = c.limits_for(["cs_agent", "account_manager"]);
        assert_eq!(l.clear_fields_per_day, 500);
        assert_eq!(c.limits_for(["nobody_knows"]), c.default);
        assert_eq!(c.limits_for([]), c.default);
    }
}
