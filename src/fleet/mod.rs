//! The fleet view (docs/fleet.md): `mirrorer fleet collect` reads
//! `fleet.yaml` ([`config`]), fetches every shard's
//! `/metadata/inventory.json` and `/metadata/status.json` in parallel
//! ([`fetch`]), and writes `fleet.json` (schema [`SCHEMA`], [`FleetReport`])
//! and a static `index.html` ([`html`]) for GitLab Pages.
//!
//! Everything a shard serves is untrusted input: bodies are bounded
//! ([`MAX_INVENTORY_BYTES`], [`MAX_STATUS_BYTES`]), `inventory.json` must
//! follow docs/metadata.md, `status.json` (schema `dist-mirror.status.v1`)
//! is read leniently (absent, unknown or mistyped fields are ignored, a
//! missing file is allowed), and every value reaches the page HTML-escaped.
//!
//! Freshness: a shard's latest snapshot is fresh when its `created_at`
//! (from `status.json`'s `snapshot`) is at most
//! `freshness.snapshot_max_age_hours` old; a syncer is fresh when its
//! `last_success_at` is at most `freshness.syncer_max_age_hours` old. A
//! prefix of a shard is fresh when the shard's latest snapshot carries it,
//! that snapshot is fresh, and the syncer named like the prefix (if any) is
//! not stale. Without the times, freshness is unknown (`null`).

pub mod command;
pub mod config;
pub mod fetch;
pub mod html;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// The `schema` value of `fleet.json`.
pub const SCHEMA: &str = "dist-mirror.fleet.v1";
/// The `schema` an `inventory.json` must have (docs/metadata.md).
pub const INVENTORY_SCHEMA: &str = "dist-mirror.inventory.v1";
/// The largest `inventory.json` read, in bytes.
pub const MAX_INVENTORY_BYTES: u64 = 16 * 1024 * 1024;
/// The largest `status.json` read, in bytes.
pub const MAX_STATUS_BYTES: u64 = 4 * 1024 * 1024;
/// Shards fetched at the same time.
pub const PARALLEL: usize = 16;

/// How fetching one document went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Doc {
    /// The URL, password masked.
    pub url: String,
    /// `ok`, `missing` (404 for `status.json`), `http_error`, `unreachable`
    /// or `invalid` (not the expected JSON).
    pub state: &'static str,
    /// The HTTP status of an `http_error` or `missing`.
    pub http_status: Option<u16>,
    /// What went wrong, in a few words (no shard content).
    pub error: Option<String>,
}

impl Doc {
    fn new(
        url: String,
        state: &'static str,
        http_status: Option<u16>,
        error: Option<String>,
    ) -> Doc {
        Doc {
            url,
            state,
            http_status,
            error,
        }
    }
}

/// `inventory.json` as read: the latest snapshot and prefixes per snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    /// `latest`.
    pub latest: Option<String>,
    /// `prefixes_by_snapshot`.
    pub prefixes_by_snapshot: BTreeMap<String, Vec<String>>,
}

/// Parses `inventory.json` (docs/metadata.md): an object with `schema`
/// [`INVENTORY_SCHEMA`], `latest` (string or null) and
/// `prefixes_by_snapshot` (object of string lists).
///
/// # Errors
/// A sentence naming the first thing that does not fit (no shard content
/// beyond a key name).
pub fn parse_inventory(bytes: &[u8]) -> Result<Inventory, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    if obj.get("schema").and_then(Value::as_str) != Some(INVENTORY_SCHEMA) {
        return Err(format!("schema is not {INVENTORY_SCHEMA}"));
    }
    let latest = match obj.get("latest") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("latest is not a string or null".to_owned()),
    };
    let mut prefixes_by_snapshot = BTreeMap::new();
    let map = obj
        .get("prefixes_by_snapshot")
        .and_then(Value::as_object)
        .ok_or("prefixes_by_snapshot is not an object")?;
    for (snapshot, list) in map {
        let list = list
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
            })
            .ok_or("prefixes_by_snapshot holds a value that is not a list of strings")?;
        prefixes_by_snapshot.insert(snapshot.clone(), list);
    }
    Ok(Inventory {
        latest,
        prefixes_by_snapshot,
    })
}

/// What `fleet` uses of `status.json`, read leniently: any field that is
/// absent or of another type is `None`/empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusView {
    /// `generated_at`.
    pub generated_at: Option<String>,
    /// `snapshot.name`, `snapshot.created_at`.
    pub snapshot: Option<(String, Option<String>)>,
    /// `promoted.name`, `promoted.at`.
    pub promoted: Option<(String, Option<String>)>,
    /// Per syncer: `status`, `last_success_at`.
    pub syncers: BTreeMap<String, (Option<String>, Option<String>)>,
}

/// Parses `status.json` leniently (a JSON object is all it must be).
///
/// # Errors
/// Not JSON, or not an object.
pub fn parse_status(bytes: &[u8]) -> Result<StatusView, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let pair = |key: &str, time: &str| {
        let o = obj.get(key)?.as_object()?;
        Some((s(o.get("name"))?, s(o.get(time))))
    };
    let mut syncers = BTreeMap::new();
    if let Some(map) = obj.get("syncers").and_then(Value::as_object) {
        for (name, entry) in map {
            let e = entry.as_object();
            syncers.insert(
                name.clone(),
                (
                    s(e.and_then(|e| e.get("status"))),
                    s(e.and_then(|e| e.get("last_success_at"))),
                ),
            );
        }
    }
    Ok(StatusView {
        generated_at: s(obj.get("generated_at")),
        snapshot: pair("snapshot", "created_at"),
        promoted: pair("promoted", "at"),
        syncers,
    })
}

/// A snapshot of a shard and its age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotAge {
    /// Its name.
    pub name: String,
    /// When it was made (from `status.json`), as served.
    pub at: Option<String>,
    /// Its age in whole seconds at `generated_at` (0 for a time in the
    /// future); `null` without a parsable time.
    pub age_s: Option<i64>,
    /// Whether the age is within the threshold; `null` when unknown.
    pub fresh: Option<bool>,
}

/// A syncer of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncerAge {
    /// `status` as served (`ok`, `failed`, ...).
    pub status: Option<String>,
    /// `last_success_at` as served.
    pub last_success_at: Option<String>,
    /// Age of the last success in whole seconds.
    pub age_s: Option<i64>,
    /// Whether that age is within the threshold; `null` when unknown.
    pub fresh: Option<bool>,
}

/// One shard in `fleet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardReport {
    /// Its name from `fleet.yaml`.
    pub name: String,
    /// Its metadata URL, password masked.
    pub metadata_url: String,
    /// Whether its `inventory.json` was fetched and valid.
    pub answered: bool,
    /// `fresh`, `stale`, `unknown` (answered, no times), or, when it did
    /// not answer, `down` (no answer), `http_error` (a status outside 2xx)
    /// or `invalid` (its `inventory.json` is not valid).
    pub state: &'static str,
    /// The `inventory.json` fetch.
    pub inventory: Doc,
    /// The `status.json` fetch.
    pub status: Doc,
    /// `generated_at` of its `status.json`.
    pub status_generated_at: Option<String>,
    /// Its latest snapshot.
    pub latest: Option<SnapshotAge>,
    /// Its promoted snapshot.
    pub promoted: Option<SnapshotAge>,
    /// Its syncers, by name.
    pub syncers: BTreeMap<String, SyncerAge>,
    /// The prefixes of its latest snapshot, with freshness (`null`: unknown).
    pub prefixes: BTreeMap<String, Option<bool>>,
}

/// One prefix across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PrefixReport {
    /// Shards whose latest snapshot carries it, in fleet order.
    pub shards: Vec<String>,
    /// Those of them where it is fresh.
    pub fresh: Vec<String>,
}

/// The thresholds used, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    /// `freshness.snapshot_max_age_hours` in seconds.
    pub snapshot_max_age_s: u64,
    /// `freshness.syncer_max_age_hours` in seconds.
    pub syncer_max_age_s: u64,
}

/// Counts over the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Shards listed.
    pub shards: usize,
    /// Shards that answered.
    pub answered: usize,
    /// Shards whose state is `fresh`.
    pub fresh: usize,
}

/// `fleet.json` (schema [`SCHEMA`], docs/fleet.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetReport {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// When it was built (UTC, seconds, `Z`).
    pub generated_at: String,
    /// The freshness thresholds.
    pub thresholds: Thresholds,
    /// Counts.
    pub summary: Summary,
    /// The shards, in `fleet.yaml` order.
    pub shards: Vec<ShardReport>,
    /// Per prefix, the shards that carry it and where it is fresh.
    pub prefixes: BTreeMap<String, PrefixReport>,
}

/// Age of an RFC 3339 time at `now`, whole seconds, at least 0.
fn age(now: DateTime<Utc>, at: Option<&str>) -> Option<i64> {
    let t = DateTime::parse_from_rfc3339(at?.trim()).ok()?;
    Some(now.signed_duration_since(t).num_seconds().max(0))
}

fn within(age_s: Option<i64>, max: std::time::Duration) -> Option<bool> {
    age_s.map(|a| u64::try_from(a).unwrap_or(0) <= max.as_secs())
}

/// Builds one shard's report from what was fetched.
pub fn shard_report(
    shard: &config::Shard,
    fleet: &config::Fleet,
    now: DateTime<Utc>,
    (inventory_doc, inventory): (Doc, Option<Inventory>),
    (status_doc, status): (Doc, Option<StatusView>),
) -> ShardReport {
    let status = status.unwrap_or_default();
    let syncers: BTreeMap<String, SyncerAge> = status
        .syncers
        .iter()
        .map(|(name, (st, last))| {
            let age_s = age(now, last.as_deref());
            (
                name.clone(),
                SyncerAge {
                    status: st.clone(),
                    last_success_at: last.clone(),
                    age_s,
                    fresh: within(age_s, fleet.syncer_max_age),
                },
            )
        })
        .collect();
    let snapshot_age = |name: &str, from_status: &Option<(String, Option<String>)>| {
        let at = from_status
            .as_ref()
            .filter(|(n, _)| n == name)
            .and_then(|(_, at)| at.clone());
        let age_s = age(now, at.as_deref());
        SnapshotAge {
            name: name.to_owned(),
            at,
            age_s,
            fresh: within(age_s, fleet.snapshot_max_age),
        }
    };
    let answered = inventory.is_some();
    let inventory = inventory.unwrap_or_default();
    let latest = inventory
        .latest
        .as_deref()
        .map(|name| snapshot_age(name, &status.snapshot));
    let promoted = status
        .promoted
        .as_ref()
        .map(|(name, _)| snapshot_age(name, &status.promoted));
    let latest_fresh = latest.as_ref().and_then(|l| l.fresh);
    let prefixes: BTreeMap<String, Option<bool>> = latest
        .as_ref()
        .and_then(|l| inventory.prefixes_by_snapshot.get(&l.name))
        .map(|list| {
            list.iter()
                .map(|p| {
                    let syncer_stale = syncers.get(p).and_then(|s| s.fresh) == Some(false);
                    let fresh = if syncer_stale {
                        Some(false)
                    } else {
                        latest_fresh
                    };
                    (p.clone(), fresh)
                })
                .collect()
        })
        .unwrap_or_default();
    let any_stale = latest_fresh == Some(false) || syncers.values().any(|s| s.fresh == Some(false));
    let state = if !answered {
        match inventory_doc.state {
            "http_error" => "http_error",
            "invalid" => "invalid",
            _ => "down",
        }
    } else if any_stale {
        "stale"
    } else if latest_fresh == Some(true) {
        "fresh"
    } else {
        "unknown"
    };
    ShardReport {
        name: shard.name.clone(),
        metadata_url: crate::redact::text(&shard.metadata_url).into_owned(),
        answered,
        state,
        inventory: inventory_doc,
        status: status_doc,
        status_generated_at: status.generated_at,
        latest,
        promoted,
        syncers,
        prefixes,
    }
}

/// Fetches and assesses one shard.
pub fn collect_shard(
    shard: &config::Shard,
    fleet: &config::Fleet,
    fetcher: &fetch::Fetcher,
    now: DateTime<Utc>,
) -> ShardReport {
    let inv_url = format!("{}inventory.json", shard.metadata_url);
    let status_url = format!("{}status.json", shard.metadata_url);
    let inventory = fetch::outcome(
        &inv_url,
        fetcher.get(&inv_url, MAX_INVENTORY_BYTES),
        false,
        parse_inventory,
    );
    let status = fetch::outcome(
        &status_url,
        fetcher.get(&status_url, MAX_STATUS_BYTES),
        true,
        parse_status,
    );
    shard_report(shard, fleet, now, inventory, status)
}

/// Puts the shard reports together.
pub fn report(fleet: &config::Fleet, now: DateTime<Utc>, shards: Vec<ShardReport>) -> FleetReport {
    let mut prefixes: BTreeMap<String, PrefixReport> = BTreeMap::new();
    for s in &shards {
        for (p, fresh) in &s.prefixes {
            let entry = prefixes.entry(p.clone()).or_default();
            entry.shards.push(s.name.clone());
            if *fresh == Some(true) {
                entry.fresh.push(s.name.clone());
            }
        }
    }
    FleetReport {
        schema: SCHEMA,
        generated_at: now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        thresholds: Thresholds {
            snapshot_max_age_s: fleet.snapshot_max_age.as_secs(),
            syncer_max_age_s: fleet.syncer_max_age.as_secs(),
        },
        summary: Summary {
            shards: shards.len(),
            answered: shards.iter().filter(|s| s.answered).count(),
            fresh: shards.iter().filter(|s| s.state == "fresh").count(),
        },
        shards,
        prefixes,
    }
}

/// Fetches every shard, [`PARALLEL`] at a time, and builds the report.
pub fn collect(fleet: &config::Fleet, fetcher: &fetch::Fetcher, now: DateTime<Utc>) -> FleetReport {
    let mut reports = Vec::with_capacity(fleet.shards.len());
    for chunk in fleet.shards.chunks(PARALLEL) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|shard| {
                    (
                        shard,
                        scope.spawn(move || collect_shard(shard, fleet, fetcher, now)),
                    )
                })
                .collect();
            for (shard, h) in handles {
                let report = h.join().unwrap_or_else(|_| {
                    let doc = |file: &str| {
                        Doc::new(
                            crate::redact::text(&format!("{}{file}", shard.metadata_url))
                                .into_owned(),
                            "unreachable",
                            None,
                            Some("internal error while fetching".to_owned()),
                        )
                    };
                    shard_report(
                        shard,
                        fleet,
                        now,
                        (doc("inventory.json"), None),
                        (doc("status.json"), None),
                    )
                });
                reports.push(report);
            }
        });
    }
    report(fleet, now, reports)
}
