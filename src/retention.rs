//! The retention policy of `prune` (docs/config.md, "retention"): a pure
//! function from snapshot names and their protections to a keep/destroy
//! decision per snapshot, with the rule or protection that decided. No I/O,
//! no clock: the periods are counted from the newest snapshot's own date.
//!
//! # Rules (sanoid's meaning, by the name `YYYYmmdd-HHMMSS`)
//!
//! - `keep_last: N`: the N newest snapshots;
//! - `keep_daily: N`: the newest snapshot of each of the last N calendar
//!   days, counted back from the newest snapshot's day (that day is the
//!   first);
//! - `keep_weekly: N`: the same per ISO 8601 week (Monday to Sunday; the
//!   week of 2026-01-01 starts on Monday 2025-12-29, so it is one week
//!   across the year boundary);
//! - `keep_monthly: N`: the same per calendar month.
//!
//! As in sanoid, a period with no snapshot still counts as one of the N
//! (after a week without runs, `keep_daily: 7` keeps only the newest day).
//! A snapshot kept by several rules reports the first in the order above.
//!
//! # Protections
//!
//! A protected snapshot is always kept and reports the protection, checked
//! before the rules. Names that are not `YYYYmmdd-HHMMSS` (a valid date and
//! time) were not made by mirrorer: they are always kept
//! ([`NOT_MADE_BY_MIRRORER`]) and take no part in the rules (they do not
//! count towards `keep_last`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, NaiveDateTime};

/// The protection of names that are not mirrorer's `YYYYmmdd-HHMMSS`.
pub const NOT_MADE_BY_MIRRORER: &str = "not_made_by_mirrorer";

/// How many snapshots of each kind to keep (0: the rule keeps none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// The N newest.
    pub keep_last: u32,
    /// The newest of each of the last N days.
    pub keep_daily: u32,
    /// The newest of each of the last N ISO weeks.
    pub keep_weekly: u32,
    /// The newest of each of the last N months.
    pub keep_monthly: u32,
}

/// What happens to a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It stays.
    Keep,
    /// It is destroyed.
    Destroy,
}

/// The decision for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot name.
    pub name: String,
    /// Keep or destroy.
    pub action: Action,
    /// The rule (`keep_last`, `keep_daily`, `keep_weekly`, `keep_monthly`),
    /// the protection (as given, or [`NOT_MADE_BY_MIRRORER`]) that kept it,
    /// or `no_rule` for a snapshot to destroy.
    pub why: String,
}

/// The time in a name `YYYYmmdd-HHMMSS`, if it is one.
pub fn parse_name(name: &str) -> Option<NaiveDateTime> {
    let b = name.as_bytes();
    if b.len() != 15 || b[8] != b'-' {
        return None;
    }
    if !b
        .iter()
        .enumerate()
        .all(|(i, c)| i == 8 || c.is_ascii_digit())
    {
        return None;
    }
    NaiveDateTime::parse_from_str(name, "%Y%m%d-%H%M%S").ok()
}

/// The index of a day's period, increasing with time.
fn period(kind: &str, d: NaiveDate) -> i64 {
    match kind {
        "keep_daily" => i64::from(d.num_days_from_ce()),
        // The Monday of its ISO week, in weeks.
        "keep_weekly" => {
            (i64::from(d.num_days_from_ce()) - i64::from(d.weekday().num_days_from_monday())) / 7
        }
        _ => i64::from(d.year()) * 12 + i64::from(d.month0()),
    }
}

/// Decides every snapshot of `names` (any order; each once) under
/// `policy`, with `protections` mapping a name to the protection that
/// keeps it (names not in `names` are ignored). Returns the decisions
/// oldest first: mirrorer's names by time, then the others by name.
pub fn plan(
    names: &[String],
    policy: &Policy,
    protections: &BTreeMap<String, String>,
) -> Vec<Decision> {
    let mut dated: Vec<(NaiveDateTime, &String)> = Vec::new();
    let mut foreign: BTreeSet<&String> = BTreeSet::new();
    for name in names {
        match parse_name(name) {
            Some(t) => dated.push((t, name)),
            None => {
                foreign.insert(name);
            }
        }
    }
    dated.sort();
    dated.dedup();
    // Newest first, for the rules.
    let newest_first: Vec<_> = dated.iter().rev().collect();
    let mut kept_by: BTreeMap<&String, &'static str> = BTreeMap::new();
    for (_, name) in newest_first.iter().take(policy.keep_last as usize) {
        kept_by.entry(name).or_insert("keep_last");
    }
    for (kind, n) in [
        ("keep_daily", policy.keep_daily),
        ("keep_weekly", policy.keep_weekly),
        ("keep_monthly", policy.keep_monthly),
    ] {
        let Some((newest, _)) = newest_first.first() else {
            break;
        };
        let last = period(kind, newest.date());
        let mut seen = BTreeSet::new();
        for (t, name) in &newest_first {
            let p = period(kind, t.date());
            if last - p >= i64::from(n) {
                break;
            }
            // Newest first: the first snapshot of a period is its newest.
            if seen.insert(p) {
                kept_by.entry(name).or_insert(kind);
            }
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for (_, name) in &dated {
        let (action, why) = match (protections.get(*name), kept_by.get(name)) {
            (Some(p), _) => (Action::Keep, p.clone()),
            (None, Some(rule)) => (Action::Keep, (*rule).to_owned()),
            (None, None) => (Action::Destroy, "no_rule".to_owned()),
        };
        out.push(Decision {
            name: (*name).clone(),
            action,
            why,
        });
    }
    for name in foreign {
        out.push(Decision {
            name: name.clone(),
            action: Action::Keep,
            why: protections
                .get(name)
                .cloned()
                .unwrap_or_else(|| NOT_MADE_BY_MIRRORER.to_owned()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    /// 400 nightly snapshots at 02:00 from 2025-01-01 to 2026-02-04
    /// (a Wednesday), plus a second one at 14:00 on the last day of every
    /// month: month, year and ISO-week boundaries.
    fn names() -> Vec<String> {
        let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let mut out = Vec::new();
        for i in 0..400 {
            let d = start + Duration::days(i);
            out.push(format!("{}-020000", d.format("%Y%m%d")));
            if (d + Duration::days(1)).day() == 1 {
                out.push(format!("{}-140000", d.format("%Y%m%d")));
            }
        }
        assert_eq!(out.first().unwrap(), "20250101-020000");
        assert_eq!(out.iter().filter(|n| n.ends_with("020000")).count(), 400);
        assert!(out.contains(&"20260204-020000".to_owned()));
        out
    }

    fn kept(policy: Policy, protections: &BTreeMap<String, String>) -> Vec<(String, String)> {
        let plan = plan(&names(), &policy, protections);
        assert_eq!(plan.len(), names().len(), "one decision per snapshot");
        plan.into_iter()
            .filter(|d| d.action == Action::Keep)
            .map(|d| (d.name, d.why))
            .collect()
    }

    /// A policy of one rule (`keep_last`, ...) with this count.
    fn rule(name: &'static str, count: u32) -> (&'static str, Policy) {
        let mut p = Policy::default();
        let field = match name {
            "keep_last" => &mut p.keep_last,
            "keep_daily" => &mut p.keep_daily,
            "keep_weekly" => &mut p.keep_weekly,
            "keep_monthly" => &mut p.keep_monthly,
            other => panic!("no rule {other}"),
        };
        *field = count;
        (name, p)
    }

    /// Asserts that a one-rule policy keeps exactly `names`, each by that
    /// rule.
    #[track_caller]
    fn assert_keeps((why, policy): (&str, Policy), names: &[&str]) {
        let expected: Vec<(String, String)> = names
            .iter()
            .map(|n| ((*n).to_owned(), why.to_owned()))
            .collect();
        assert_eq!(kept(policy, &BTreeMap::new()), expected);
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn nothing_kept_without_rules() {
        assert!(kept(Policy::default(), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn keep_last() {
        assert_keeps(
            rule("keep_last", 3),
            &["20260202-020000", "20260203-020000", "20260204-020000"],
        );
    }

    #[test]
    fn keep_daily_takes_the_newest_of_each_day_across_a_month_end() {
        // Feb 4, 3, 2, 1 and Jan 31, whose newest is the 14:00 one.
        assert_keeps(
            rule("keep_daily", 5),
            &[
                "20260131-140000",
                "20260201-020000",
                "20260202-020000",
                "20260203-020000",
                "20260204-020000",
            ],
        );
    }

    #[test]
    fn keep_weekly_uses_iso_weeks_across_the_year_boundary() {
        // 2026-W06 (Feb 2-8) newest Feb 4; W05 ends Sunday Feb 1; W04 Jan
        // 25; W03 Jan 18; W02 Jan 11; 2026-W01 runs Mon 2025-12-29 to Sun
        // 2026-01-04: one week, newest Jan 4 (Dec 31 is not kept).
        assert_keeps(
            rule("keep_weekly", 6),
            &[
                "20260104-020000",
                "20260111-020000",
                "20260118-020000",
                "20260125-020000",
                "20260201-020000",
                "20260204-020000",
            ],
        );
        // One more week reaches 2025-W52, whose Sunday is Dec 28.
        let (_, p) = rule("keep_weekly", 7);
        assert_eq!(kept(p, &BTreeMap::new())[0].0, "20251228-020000");
    }

    #[test]
    fn keep_monthly_takes_the_newest_of_each_month_across_the_year() {
        assert_keeps(
            rule("keep_monthly", 3),
            &["20251231-140000", "20260131-140000", "20260204-020000"],
        );
        // Every month of the list: 2025-01 .. 2026-02 is 14; asking for
        // more keeps no more.
        let p = Policy {
            keep_monthly: 20,
            ..Policy::default()
        };
        let got = kept(p, &BTreeMap::new());
        assert_eq!(got.len(), 14);
        assert_eq!(got[0].0, "20250131-140000");
    }

    #[test]
    fn rules_combine_and_the_first_rule_is_reported() {
        let p = Policy {
            keep_last: 1,
            keep_daily: 2,
            keep_weekly: 2,
            keep_monthly: 2,
        };
        assert_eq!(
            kept(p, &BTreeMap::new()),
            pairs(&[
                ("20260131-140000", "keep_monthly"),
                ("20260201-020000", "keep_weekly"),
                ("20260203-020000", "keep_daily"),
                ("20260204-020000", "keep_last"),
            ])
        );
    }

    #[test]
    fn protections_win_and_foreign_names_are_kept() {
        let mut protections = BTreeMap::new();
        protections.insert("20250101-020000".to_owned(), "promoted".to_owned());
        protections.insert("20250615-020000".to_owned(), "zfs_hold".to_owned());
        let mut all = names();
        all.push("autosnap_2025-01-01_daily".to_owned());
        all.push("20251399-020000".to_owned()); // not a date
        let p = Policy {
            keep_last: 1,
            ..Policy::default()
        };
        let plan = plan(&all, &p, &protections);
        let keep: Vec<_> = plan
            .iter()
            .filter(|d| d.action == Action::Keep)
            .map(|d| (d.name.as_str(), d.why.as_str()))
            .collect();
        assert_eq!(
            keep,
            vec![
                ("20250101-020000", "promoted"),
                ("20250615-020000", "zfs_hold"),
                ("20260204-020000", "keep_last"),
                ("20251399-020000", NOT_MADE_BY_MIRRORER),
                ("autosnap_2025-01-01_daily", NOT_MADE_BY_MIRRORER),
            ]
        );
        let destroy = plan.iter().filter(|d| d.action == Action::Destroy);
        assert_eq!(destroy.clone().count(), all.len() - 5);
        assert!(destroy.clone().all(|d| d.why == "no_rule"));
        // Oldest first.
        assert_eq!(plan[0].name, "20250101-020000");
        assert_eq!(plan[1].name, "20250102-020000");
    }
}
