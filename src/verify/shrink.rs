//! The shrink guard (ftpsync's max-delete, per repository): against an
//! earlier report, a repository that disappeared, or whose package count fell
//! by more than `max_percent`, is a problem `shrunk`.

use super::model::{Problem, ProblemKind, RepoReport, Report};

/// Default of `verify.max_shrink_percent`.
pub const DEFAULT_MAX_SHRINK_PERCENT: u64 = 20;

/// Adds `shrunk` problems to `report` from `previous` (skipped entirely when
/// `allow`), then recomputes its totals. A disappeared repository gets an
/// entry of its own (`packages` 0) in the report.
pub fn apply(report: &mut Report, previous: &Report, max_percent: u64, allow: bool) {
    if allow {
        return;
    }
    for old in &previous.repositories {
        match report.repositories.iter_mut().find(|r| r.id == old.id) {
            None => {
                let mut gone = RepoReport::new(&old.id, &old.kind, &old.prefix);
                gone.add(Problem::new(
                    old.id.clone(),
                    ProblemKind::Shrunk,
                    Some(format!("{} packages", old.packages)),
                    Some("repository missing".into()),
                ));
                report.repositories.push(gone);
            }
            Some(now) => {
                // Fell by more than max_percent: now < old * (100 - max) / 100.
                let floor =
                    u128::from(old.packages) * u128::from(100u64.saturating_sub(max_percent));
                if u128::from(now.packages) * 100 < floor {
                    now.add(Problem::new(
                        now.id.clone(),
                        ProblemKind::Shrunk,
                        Some(format!(
                            "{} packages (at most {max_percent}% fewer)",
                            old.packages
                        )),
                        Some(format!("{} packages", now.packages)),
                    ));
                }
            }
        }
    }
    report.repositories.sort_by(|a, b| a.id.cmp(&b.id));
    report.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(repos: &[(&str, u64)]) -> Report {
        let mut r = Report {
            schema: super::super::model::SCHEMA.into(),
            generated_at: String::new(),
            scan_root: String::new(),
            deep: "none".into(),
            status: String::new(),
            signatures: "not_checked".into(),
            totals: Default::default(),
            repositories: repos
                .iter()
                .map(|(id, n)| {
                    let mut x = RepoReport::new(id, "apt", "p");
                    x.packages = *n;
                    x
                })
                .collect(),
        };
        r.finish();
        r
    }

    #[test]
    fn the_limit_is_exclusive_and_allow_turns_it_off() {
        let previous = report(&[("a", 100), ("b", 100), ("gone", 5)]);
        let mut now = report(&[("a", 80), ("b", 79)]);
        apply(&mut now, &previous, 20, false);
        let shrunk: Vec<&str> = now
            .repositories
            .iter()
            .filter(|r| r.problems.iter().any(|p| p.problem == ProblemKind::Shrunk))
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(shrunk, ["b", "gone"]);
        assert_eq!(now.status, "failed");
        let mut now = report(&[("a", 1)]);
        apply(&mut now, &previous, 20, true);
        assert_eq!(now.status, "ok");
    }
}
