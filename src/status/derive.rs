//! The parts of `status.json` read from the workdir at every write
//! (docs/metadata.md, "status.json"):
//!
//! - `snapshot` and `snapshots_count`: the published snapshots, as
//!   `inventory.json` lists them ([`crate::inventory::build`] of
//!   `<workdir>/repo`);
//! - `verify`: `<workdir>/metadata/snapshots/<newest>/verify.json`, written
//!   by `verify` (optional): its `status` (`ok`/`failed`) and its problem
//!   count (`totals.problems`, else the sum over `repositories`, else 1 for
//!   a failed status); per repository (`id`) its `problems_count`, else
//!   the length of its `problems`;
//! - `promoted`: `<workdir>/state/promoted.txt` (the name on its first line;
//!   when: the newest entry of `<workdir>/metadata/promotions.json`
//!   (`{"promotions": [{"snapshot", "promoted_at"}, ...]}`, newest first)
//!   for that snapshot, else the file's modification time), written by
//!   `promote` (optional).
//!
//! Each file is read without following a symlink and up to a bound; one
//! that cannot be read leaves the part as it was (warning
//! `status_part_unreadable`), a missing one makes the part `null`.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use super::{PromotedInfo, SnapshotInfo, Status, TARGET, VerifyInfo, timestamp};
use crate::config::Config;
use crate::state::StateDir;
use crate::state::files::read_regular;

/// The largest `verify.json` or `promotions.json` read (bytes).
pub const MAX_DOC_BYTES: u64 = 16 * 1024 * 1024;
/// `promoted.txt` under `state/`.
pub const PROMOTED_FILE: &str = "promoted.txt";
/// `promotions.json` under `metadata/`.
pub const PROMOTIONS_FILE: &str = "promotions.json";
/// `verify.json` under `metadata/snapshots/<snapshot>/`.
pub const VERIFY_FILE: &str = "verify.json";

/// The UTC time a snapshot name (`YYYYmmdd-HHMMSS`, local time of this
/// host) stands for; `None` if it is not such a name.
pub fn snapshot_time(name: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(name, "%Y%m%d-%H%M%S").ok()?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Recomputes `snapshot`, `snapshots_count`, `verify` and `promoted`.
pub fn refresh(status: &mut Status, config: &Config, state: &StateDir) {
    match crate::inventory::build(&config.mirror.repo_dir()) {
        Ok(inv) => {
            status.snapshots_count = inv.prefixes_by_snapshot.len() as u64;
            status.snapshot = inv.latest.as_ref().map(|name| SnapshotInfo {
                name: name.clone(),
                created_at: snapshot_time(name).map(timestamp),
            });
        }
        Err(e) => {
            tracing::warn!(target: TARGET, part = "snapshot", error = %super::chain(&e), "status_part_unreadable")
        }
    }
    let metadata = config.mirror.metadata_dir();
    match &status.snapshot {
        None => status.verify = None,
        Some(snap) => {
            let path = metadata
                .join("snapshots")
                .join(&snap.name)
                .join(VERIFY_FILE);
            match read_json(&path) {
                Ok(None) => status.verify = None,
                Ok(Some(doc)) => status.verify = Some(verify_info(&snap.name, &doc)),
                Err(why) => {
                    tracing::warn!(target: TARGET, part = "verify", path = %path.display(), error = %why, "status_part_unreadable");
                    status.verify = Some(VerifyInfo {
                        snapshot: snap.name.clone(),
                        status: "unreadable".to_owned(),
                        problems: 0,
                        repositories: BTreeMap::new(),
                    });
                }
            }
        }
    }
    match promoted(state.path(), &metadata) {
        Ok(p) => status.promoted = p,
        Err(why) => {
            tracing::warn!(target: TARGET, part = "promoted", error = %why, "status_part_unreadable")
        }
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, String> {
    match read_regular(path, MAX_DOC_BYTES) {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) => Err(super::chain(&e)),
    }
}

/// A count: a number, the length of a list, or an object's
/// `problems_count` (verify's count when its `problems` list is shortened),
/// else its `problems`.
fn count(v: &Value) -> u64 {
    match v {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::Array(a) => a.len() as u64,
        Value::Object(o) => o
            .get("problems_count")
            .or_else(|| o.get("problems"))
            .map_or(0, count),
        _ => 0,
    }
}

/// The verify part of a `verify.json` document.
pub fn verify_info(snapshot: &str, doc: &Value) -> VerifyInfo {
    let state = doc
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let mut repositories = BTreeMap::new();
    match doc.get("repositories") {
        Some(Value::Array(items)) => {
            for item in items {
                let id = ["id", "repository", "name"]
                    .iter()
                    .find_map(|k| item.get(*k).and_then(Value::as_str));
                if let Some(id) = id {
                    *repositories.entry(id.to_owned()).or_insert(0) += count(item);
                }
            }
        }
        Some(Value::Object(map)) => {
            for (id, item) in map {
                repositories.insert(id.clone(), count(item));
            }
        }
        _ => {}
    }
    let problems = match doc.get("totals").and_then(|t| t.get("problems")) {
        Some(v) => count(v),
        None if !repositories.is_empty() => repositories.values().sum(),
        None => u64::from(state != "ok"),
    };
    VerifyInfo {
        snapshot: snapshot.to_owned(),
        status: state,
        problems,
        repositories,
    }
}

fn promoted(state_dir: &Path, metadata: &Path) -> Result<Option<PromotedInfo>, String> {
    let txt = state_dir.join(PROMOTED_FILE);
    let name = read_regular(&txt, 4096)
        .map_err(|e| super::chain(&e))?
        .and_then(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .next()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
        });
    let promotions = read_json(&metadata.join(PROMOTIONS_FILE)).unwrap_or_else(|why| {
        tracing::warn!(target: TARGET, part = "promoted", error = %why, "status_part_unreadable");
        None
    });
    let entries: Vec<&Value> = match &promotions {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(o)) => o
            .get("promotions")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let entry_name = |e: &Value| {
        ["snapshot", "name"]
            .iter()
            .find_map(|k| e.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let entry_at = |e: &Value| {
        ["at", "promoted_at"]
            .iter()
            .find_map(|k| e.get(*k).and_then(Value::as_str))
            .and_then(super::parse_timestamp)
    };
    let (name, at) = match name {
        Some(name) => {
            // promotions.json lists the newest first.
            let at = entries
                .iter()
                .find(|e| entry_name(e).as_deref() == Some(name.as_str()))
                .and_then(|e| entry_at(e))
                .or_else(|| {
                    std::fs::symlink_metadata(&txt)
                        .and_then(|m| m.modified())
                        .ok()
                        .map(DateTime::<Utc>::from)
                });
            (name, at)
        }
        None => match entries
            .first()
            .and_then(|e| Some((entry_name(e)?, entry_at(e))))
        {
            Some(found) => found,
            None => return Ok(None),
        },
    };
    Ok(Some(PromotedInfo {
        created_at: snapshot_time(&name).map(timestamp),
        name,
        at: at.map(timestamp),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_problems_from_totals_or_repositories() {
        let doc = serde_json::json!({"status": "failed", "totals": {"problems": 3},
            "repositories": [{"id": "debian/main", "problems": [1, 2]}, {"id": "epel", "problems": 1}]});
        let v = verify_info("s", &doc);
        assert_eq!(v.problems, 3);
        assert_eq!(v.repositories["debian/main"], 2);
        // verify's own shape: the list may be shortened, problems_count is not.
        let doc = serde_json::json!({"status": "failed", "totals": {"problems": 7},
            "repositories": [{"id": "epel", "problems": [{"path": "x"}], "problems_count": 7}]});
        let v = verify_info("s", &doc);
        assert_eq!((v.problems, v.repositories["epel"]), (7, 7));
        let doc = serde_json::json!({"status": "failed", "repositories": {"a": {"problems": 4}}});
        assert_eq!(verify_info("s", &doc).problems, 4);
        assert_eq!(
            verify_info("s", &serde_json::json!({"status": "failed"})).problems,
            1
        );
        assert_eq!(
            verify_info("s", &serde_json::json!({"status": "ok"})).problems,
            0
        );
    }

    #[test]
    fn snapshot_names_are_times() {
        assert!(snapshot_time("20260603-120000").is_some());
        assert!(snapshot_time("nightly").is_none());
    }
}
