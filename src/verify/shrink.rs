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
