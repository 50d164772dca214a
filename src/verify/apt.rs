//! APT checks (Debian repository format,
//! <https://wiki.debian.org/DebianRepository/Format>): per release, every index
//! listed by the Release/InRelease file (strongest checksum type present) that
//! exists has that size and checksum, and every (component, arch) has a
//! `Packages` variant present; per repository (one binary index of the
//! catalog), every package of its `Packages` (`Filename`, `Size`) exists under
//! the prefix with that size, and with a deep check its `SHA256` (else
//! `MD5sum`) matches. The Packages file is streamed one stanza at a time.

use std::collections::{BTreeMap, HashMap};

use super::Context;
use super::files::{Algo, BATCH, Expected, hash_reader, open_index, read_line};
use super::model::{Problem, ProblemKind, RepoReport};
use crate::catalog::apt::{ReleaseFile, parse_index_path};
use crate::catalog::confine::{OpenError, lexically_inside};
use crate::catalog::ids::{decode_backslashreplace, safe_id};
use crate::catalog::{AptRelease, AptRepository};

/// Verifies one release and its catalog repositories; returns one report per
/// (component, arch) listed in the Release file (the catalog's id; a
/// (component, arch) whose indexes are all missing gets a report of its own
/// with `index_missing`). Release-wide problems (an index that is not a
/// binary `Packages` file, the signature) go to every report of the release.
pub(super) fn verify_release(
    ctx: &Context,
    release: &AptRelease,
    repos: &[&AptRepository],
) -> Vec<RepoReport> {
    let mut reports: BTreeMap<(String, String), RepoReport> = BTreeMap::new();
    let mut common: Vec<Problem> = Vec::new();
    let suite_rel = format!("{}/dists/{}", release.prefix, release.suite);
    for repo in repos {
        reports.insert(
            (repo.component.clone(), repo.arch.clone()),
            RepoReport::new(&repo.id, "apt", &repo.prefix),
        );
    }
    let text = match ctx
        .confine
        .read_file(
            &ctx.root.join(&release.release_path),
            crate::catalog::MAX_METADATA_FILE,
        )
        .map_err(open_text)
    {
        Ok(bytes) => decode_backslashreplace(&bytes),
        Err(e) => {
            common.push(Problem::unreadable(release.release_path.clone(), e));
            String::new()
        }
    };
    let parsed = ReleaseFile::parse(&text);
    if let Some((field, entries)) = parsed.best_checksums() {
        let algo = Algo::from_name(field);
        // (component, arch) -> any variant present
        let mut variants: HashMap<(String, String), bool> = HashMap::new();
        for entry in entries {
            let index = parse_index_path(&entry.path)
                .filter(|(c, _, _)| *c != "debian-installer" && !c.ends_with("/debian-installer"));
            let from_prefix = format!("dists/{}/{}", release.suite, entry.path);
            let Some(rel) = lexically_inside(&release.prefix, &from_prefix) else {
                common.push(Problem::new(
                    entry.path.clone(),
                    ProblemKind::OutsideTree,
                    Some(format!("inside {}", release.prefix)),
                    None,
                ));
                continue;
            };
            let mut found = Vec::new();
            let present = check_index(ctx, &rel, entry.size, algo, &entry.checksum, &mut found);
            if let Some((component, arch, _)) = index {
                let key = (component.to_owned(), arch.to_owned());
                *variants.entry(key.clone()).or_default() |= present;
                let report = reports.entry(key).or_insert_with(|| {
                    let id = format!(
                        "{}__{}__{}__{}",
                        safe_id(&release.prefix),
                        safe_id(&release.suite),
                        safe_id(component),
                        safe_id(arch)
                    );
                    RepoReport::new(&id, "apt", &release.prefix)
                });
                if present {
                    report.files_checked += 1;
                }
                for p in found {
                    report.add(p);
                }
            } else {
                common.extend(found);
            }
        }
        for ((component, arch), present) in variants {
            if !present && let Some(report) = reports.get_mut(&(component.clone(), arch.clone())) {
                report.add(Problem::new(
                    format!("{suite_rel}/{component}/binary-{arch}/Packages"),
                    ProblemKind::IndexMissing,
                    Some("a listed Packages variant".into()),
                    None,
                ));
            }
        }
    } else if !text.is_empty() {
        common.push(Problem::new(
            release.release_path.clone(),
            ProblemKind::Unreadable,
            Some("checksum fields".into()),
            None,
        ));
    }
    if let Some(keyring) = ctx.keyring_for(&release.prefix)
        && let Some(problem) = super::signature::check_release(ctx, &suite_rel, keyring)
    {
        common.push(problem);
    }
    for repo in repos {
        if let Some(report) = reports.get_mut(&(repo.component.clone(), repo.arch.clone())) {
            verify_packages(ctx, repo, report);
        }
    }
    let mut out: Vec<RepoReport> = reports.into_values().collect();
    for report in &mut out {
        for p in &common {
            report.add(p.clone());
        }
    }
    out
}

fn open_text(e: OpenError) -> String {
    match e {
        OpenError::Outside => "leads out of the scan root".to_owned(),
        OpenError::Io(e) => e.to_string(),
    }
}

/// Checks one index file listed by a Release file. Returns whether it is
/// present (a regular file inside the root); problems go to `found`.
fn check_index(
    ctx: &Context,
    rel: &str,
    size: i64,
    algo: Option<Algo>,
    checksum: &str,
    found: &mut Vec<Problem>,
) -> bool {
    let file = match ctx.confine.open_file(&ctx.root.join(rel)) {
        Ok(file) => file,
        Err(OpenError::Outside) => {
            found.push(Problem::new(rel, ProblemKind::OutsideTree, None, None));
            return false;
        }
        // Not every listed variant must exist: absence is judged per (component, arch).
        Err(OpenError::Io(_)) => return false,
    };
    let Some(algo) = algo else {
        return true;
    };
    match hash_reader(file, algo) {
        Ok((got, got_size)) => {
            if i64::try_from(got_size).ok() != Some(size) {
                found.push(Problem::new(
                    rel,
                    ProblemKind::SizeMismatch,
                    Some(size.to_string()),
                    Some(got_size.to_string()),
                ));
            } else if !got.eq_ignore_ascii_case(checksum) {
                found.push(Problem::new(
                    rel,
                    ProblemKind::ChecksumMismatch,
                    Some(format!("{}:{}", algo.name(), checksum.to_ascii_lowercase())),
                    Some(format!("{}:{got}", algo.name())),
                ));
            }
        }
        Err(e) => found.push(Problem::unreadable(rel, e)),
    }
    true
}

/// Streams the repository's chosen `Packages` index and checks every package.
fn verify_packages(ctx: &Context, repo: &AptRepository, report: &mut RepoReport) {
    let mut reader = match open_index(&ctx.root, &ctx.confine, &repo.metadata_path) {
        Ok(reader) => reader,
        Err(e) => {
            report.add(Problem::unreadable(
                repo.metadata_path.clone(),
                open_text(e),
            ));
            return;
        }
    };
    let mut line = Vec::new();
    let mut stanza = Expected::default();
    let mut md5: Option<String> = None;
    let mut has_fields = false;
    let mut batch = Vec::with_capacity(BATCH);
    let flush_stanza = |stanza: &mut Expected,
                        md5: &mut Option<String>,
                        batch: &mut Vec<Expected>,
                        report: &mut RepoReport| {
        let mut e = std::mem::take(stanza);
        if e.checksum.is_none() {
            e.checksum = md5.take().map(|m| (Algo::Md5, m));
        }
        *md5 = None;
        if !e.href.is_empty() {
            report.packages += 1;
            batch.push(e);
        }
    };
    loop {
        match read_line(&mut *reader, &mut line) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                report.add(Problem::unreadable(repo.metadata_path.clone(), e));
                break;
            }
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            if has_fields {
                flush_stanza(&mut stanza, &mut md5, &mut batch, report);
                has_fields = false;
                if batch.len() >= BATCH {
                    ctx.check(&repo.base_path, &mut batch, report);
                }
            }
            continue;
        }
        has_fields = true;
        let Some((key, value)) = text.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Filename" => stanza.href = value.to_owned(),
            "Size" => stanza.size = value.parse().ok(),
            "SHA256" => stanza.checksum = Some((Algo::Sha256, value.to_owned())),
            "MD5sum" => md5 = Some(value.to_owned()),
            _ => {}
        }
    }
    if has_fields {
        flush_stanza(&mut stanza, &mut md5, &mut batch, report);
    }
    ctx.check(&repo.base_path, &mut batch, report);
}
