//! RPM discovery (docs/metadata.md, "RPM"): one entry per `repodata/repomd.xml`
//! found by the walk, with its `<data>` items checked against the files.
//!
//! repomd.xml is the createrepo repository index
//! (<https://github.com/rpm-software-management/createrepo_c>, `repomd.xml`;
//! namespace `http://linux.duke.edu/metadata/repo`): a `<repomd>` root whose
//! `<data type="...">` children carry `<location href>`, `<checksum type>`,
//! `<open-checksum type>`, `<size>`, `<open-size>` and `<timestamp>`.
//! Namespaces are ignored.

use std::path::Path;

use rayon::prelude::*;

use super::confine::{Confine, OUTSIDE_MESSAGE, OpenError, lexically_inside};
use super::ids::{lossy_name, pathlib_join, py_int, py_strip, safe_path_id};
use super::model::{Repository, RpmMetadata, RpmRepository, Warning};
use super::walk::{RpmFind, hash_bytes, hash_file, join, os_error_text};

/// The warning for a `location@href` (other than the primary's) that is
/// absolute or climbs out of the repository's base directory.
pub const OUTSIDE_HREF_MESSAGE: &str = "metadata location is outside the repository; not opened";

/// Builds the RPM entries for the `repodata/` directories the walk found.
/// Files are opened only inside the scan root (`confine`), and a
/// `location@href` only inside the repository's base directory.
pub(crate) fn discover(
    root: &Path,
    confine: &Confine,
    finds: &[RpmFind],
) -> (Vec<Repository>, Vec<Warning>) {
    let results: Vec<(RpmRepository, Vec<Warning>)> = finds
        .par_iter()
        .map(|f| repository(root, confine, f))
        .collect();
    let mut repos = Vec::with_capacity(results.len());
    let mut warnings = Vec::new();
    for (repo, w) in results {
        repos.push(Repository::Rpm(repo));
        warnings.extend(w);
    }
    (repos, warnings)
}

/// Distribution fields from the layout table of docs/metadata.md:
/// (distro, release, repo, arch).
type Distro = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Matches `base_path` against the distribution layouts (first match wins).
pub fn distro_fields(base_path: &str, prefix: &str) -> Distro {
    let parts: Vec<&str> = base_path.split('/').collect();
    let s = |x: &str| Some(x.to_owned());
    let nonempty = |x: &&str| !x.is_empty();
    match parts[..] {
        // ^(almalinux|rockylinux)/([0-9.]+)/([^/]+)/([^/]+)/os$
        [d @ ("almalinux" | "rockylinux"), release, repo, arch, "os"]
            if !release.is_empty()
                && release.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && nonempty(&repo)
                && nonempty(&arch) =>
        {
            return (s(d), s(release), s(repo), s(arch));
        }
        _ => {}
    }
    match parts[..] {
        // ^centos/([^/]+)/([^/]+)/([^/]+)/os$
        ["centos", release, repo, arch, "os"] if [release, repo, arch].iter().all(nonempty) => {
            return (s(prefix), s(release), s(repo), s(arch));
        }
        _ => {}
    }
    match parts[..] {
        // ^OracleLinux/OL([0-9]+)/([^/]+)/([^/]+)$
        ["OracleLinux", ol, repo, arch] if nonempty(&repo) && nonempty(&arch) => {
            if let Some(release) = ol.strip_prefix("OL")
                && !release.is_empty()
                && release.bytes().all(|b| b.is_ascii_digit())
            {
                return (s(prefix), s(release), s(repo), s(arch));
            }
        }
        _ => {}
    }
    // ^(fedora|epel)/([^/]+)/([^/]+)(/([^/]+))?  (prefix match)
    if parts.len() >= 3
        && matches!(parts[0], "fedora" | "epel")
        && nonempty(&parts[1])
        && nonempty(&parts[2])
    {
        let arch = parts
            .get(3)
            .filter(|a| !a.is_empty())
            .map(|a| a.to_string());
        return (s(parts[0]), s(parts[1]), s(parts[2]), arch);
    }
    if matches!(prefix, "opensuse" | "sles" | "sle" | "opensuse-leap") {
        return (s(prefix), None, None, None);
    }
    (None, None, None, None)
}

fn local_name<'a>(node: &roxmltree::Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

fn child<'a, 'i>(node: &roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && local_name(c) == name)
}

fn text_of(node: &roxmltree::Node) -> String {
    py_strip(node.text().unwrap_or("")).to_owned()
}

fn int_child(node: &roxmltree::Node, name: &str) -> Option<i64> {
    child(node, name).and_then(|c| py_int(c.text().unwrap_or("")))
}

/// (type attribute or null, trimmed text when non-empty) of a checksum element.
fn checksum_child(node: &roxmltree::Node, name: &str) -> (Option<Option<String>>, Option<String>) {
    match child(node, name) {
        None => (None, None),
        Some(c) => {
            let kind = c.attribute("type").map(str::to_owned);
            let text = text_of(&c);
            (Some(kind), (!text.is_empty()).then_some(text))
        }
    }
}

fn repository(root: &Path, confine: &Confine, find: &RpmFind) -> (RpmRepository, Vec<Warning>) {
    let base_path = lossy_name(&find.rel);
    let prefix = base_path.split('/').next().unwrap_or("").to_owned();
    let repomd_path = pathlib_join(&base_path, "repodata/repomd.xml");
    let base_dir = join(root, &find.rel);
    let repomd_file = base_dir.join("repodata").join("repomd.xml");
    let (distro, release, repo, arch) = distro_fields(&base_path, &prefix);
    let mut warnings = Vec::new();
    let warn = |path: &str, message: String| Warning {
        format: "rpm",
        prefix: prefix.clone(),
        path: path.to_owned(),
        message,
    };
    let mut entry = RpmRepository {
        id: safe_path_id(&base_path),
        kind: "rpm",
        prefix: prefix.clone(),
        base_path: base_path.clone(),
        repomd_path: repomd_path.clone(),
        repomd_sha256: None,
        repomd_size: None,
        metadata: Vec::new(),
        status: "broken",
        distro,
        release,
        repo,
        arch,
        primary_path: None,
        primary_checksum_type: None,
        primary_checksum: None,
        primary_size: None,
    };
    let bytes = match confine.read_file(&repomd_file, super::MAX_METADATA_FILE) {
        Ok(bytes) => bytes,
        Err(OpenError::Outside) => {
            warnings.push(warn(&repomd_path, OUTSIDE_MESSAGE.to_owned()));
            return (entry, warnings);
        }
        Err(OpenError::Io(e)) => {
            let reason = os_error_text(&e, &repomd_file);
            warnings.push(warn(
                &repomd_path,
                format!("failed to parse repomd.xml: {reason}"),
            ));
            return (entry, warnings);
        }
    };
    entry.repomd_sha256 = Some(hash_bytes(&bytes));
    entry.repomd_size = Some(bytes.len() as u64);
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|e| format!("not UTF-8: {e}"))
        .and_then(super::xml::parse);
    let doc = match parsed {
        Ok(doc) => doc,
        Err(reason) => {
            warnings.push(warn(
                &repomd_path,
                format!("failed to parse repomd.xml: {reason}"),
            ));
            return (entry, warnings);
        }
    };

    let mut items = Vec::new();
    for data in doc
        .root_element()
        .children()
        .filter(|n| n.is_element() && local_name(n) == "data")
    {
        let Some(kind) = data.attribute("type").filter(|t| !t.is_empty()) else {
            continue;
        };
        let href = child(&data, "location")
            .and_then(|l| l.attribute("href"))
            .map(|h| py_strip(h).to_owned())
            .filter(|h| !h.is_empty());
        let (checksum_type, checksum) = checksum_child(&data, "checksum");
        let (open_checksum_type, open_checksum) = checksum_child(&data, "open-checksum");
        let mut item = RpmMetadata {
            kind: kind.to_owned(),
            status: "missing",
            path: href.as_ref().map(|h| pathlib_join(&base_path, h)),
            location: href.clone(),
            checksum_type,
            checksum,
            open_checksum_type,
            open_checksum,
            size: int_child(&data, "size"),
            open_size: int_child(&data, "open-size"),
            timestamp: int_child(&data, "timestamp"),
            metadata_size: None,
            metadata_sha256: None,
        };
        let inside = href.as_deref().map(|h| lexically_inside(&base_path, h));
        match (&href, &item.path) {
            (Some(_), Some(path)) if inside == Some(None) => {
                // Absolute, or climbing out of the base: never opened, as if
                // missing (the reference's warning for a primary, whose
                // absolute hrefs it looks up on the host; the fixtures keep it).
                let message = if kind == "primary" {
                    "primary metadata file listed in repomd.xml is missing"
                } else {
                    OUTSIDE_HREF_MESSAGE
                };
                warnings.push(warn(path, message.to_owned()));
            }
            (Some(href), Some(path)) => {
                let file = base_dir.join(href);
                let is_file = match confine.is_file(&file) {
                    Ok(is_file) => is_file,
                    Err(_) => {
                        warnings.push(warn(path, OUTSIDE_MESSAGE.to_owned()));
                        items.push(item);
                        continue;
                    }
                };
                if is_file {
                    match hash_file(confine, &file) {
                        Ok((sha256, size)) => {
                            item.status = "ok";
                            let declared_sha256 =
                                matches!(&item.checksum_type, Some(Some(t)) if t == "sha256");
                            if declared_sha256 && item.checksum.as_deref() != Some(sha256.as_str())
                            {
                                item.status = "checksum_mismatch";
                                warnings.push(warn(
                                    path,
                                    "metadata file sha256 does not match checksum from repomd.xml"
                                        .to_owned(),
                                ));
                            }
                            item.metadata_sha256 = Some(sha256);
                            item.metadata_size = Some(size);
                        }
                        Err(OpenError::Outside) => {
                            warnings.push(warn(path, OUTSIDE_MESSAGE.to_owned()));
                        }
                        Err(OpenError::Io(e)) => {
                            // As the reference: an unreadable listed file makes the
                            // whole repository broken, with only this warning.
                            let reason = os_error_text(&e, &file);
                            let warning = warn(
                                &repomd_path,
                                format!("failed to parse repomd.xml: {reason}"),
                            );
                            return (entry, vec![warning]);
                        }
                    }
                } else if kind == "primary" {
                    warnings.push(warn(
                        path,
                        "primary metadata file listed in repomd.xml is missing".to_owned(),
                    ));
                }
            }
            _ => {
                if kind == "primary" {
                    warnings.push(warn(
                        &repomd_path,
                        "primary metadata entry does not contain location href".to_owned(),
                    ));
                }
            }
        }
        items.push(item);
    }
    items.sort_by(|a, b| {
        (a.kind.as_str(), a.location.as_deref().unwrap_or(""))
            .cmp(&(b.kind.as_str(), b.location.as_deref().unwrap_or("")))
    });
    match items.iter().find(|i| i.kind == "primary") {
        None => {
            entry.status = "missing_primary";
            warnings.push(warn(
                &repomd_path,
                "primary metadata not found in repomd.xml".to_owned(),
            ));
        }
        Some(primary) => {
            entry.primary_path = primary.path.clone();
            entry.primary_checksum_type = primary.checksum_type.clone();
            entry.primary_checksum = primary.checksum.clone();
            entry.primary_size = primary.size;
            let bad_primary = matches!(primary.status, "missing" | "checksum_mismatch");
            let any_mismatch = items.iter().any(|i| i.status == "checksum_mismatch");
            entry.status = if bad_primary || any_mismatch {
                "partial"
            } else {
                "ok"
            };
        }
    }
    entry.metadata = items;
    (entry, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distro_layouts() {
        let f = |b: &str| {
            let prefix = b.split('/').next().unwrap_or("");
            distro_fields(b, prefix)
        };
        let some = |x: &str| Some(x.to_owned());
        assert_eq!(
            f("almalinux/9.4/BaseOS/x86_64/os"),
            (
                some("almalinux"),
                some("9.4"),
                some("BaseOS"),
                some("x86_64")
            )
        );
        assert_eq!(
            f("almalinux/9-x/BaseOS/x86_64/os"),
            (None, None, None, None)
        );
        assert_eq!(
            f("OracleLinux/OL8/baseos/x86_64"),
            (
                some("OracleLinux"),
                some("8"),
                some("baseos"),
                some("x86_64")
            )
        );
        assert_eq!(
            f("epel/9/Everything"),
            (some("epel"), some("9"), some("Everything"), None)
        );
        assert_eq!(f("sle/x"), (some("sle"), None, None, None));
        assert_eq!(f("other/x"), (None, None, None, None));
    }
}
