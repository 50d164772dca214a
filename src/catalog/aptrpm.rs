//! APT-RPM discovery for ALT Linux (docs/metadata.md, "APT-RPM (ALT Linux)").
//!
//! ALT's apt-rpm layout (as written by `genbasedir` from ALT's apt-repo-tools):
//! `<base_path>/base/pkglist.<component>[.xz|.gz|.bz2]` (the package index of
//! a component, a stream of RPM headers), `<base_path>/base/release` and
//! `release.<component>` (RFC 822 style descriptions), and the packages in
//! `<base_path>/RPMS.<component>/`. Typical base paths: `<prefix>/p10/branch/x86_64`,
//! `<prefix>/Sisyphus/x86_64`.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use super::confine::{Confine, OUTSIDE_MESSAGE, OpenError};
use super::ids::{lossy_name, safe_path_id};
use super::model::{AptRpmRepository, Repository, Warning};
use super::walk::{PkglistFind, hash_file, join, os_error_text};

/// Architectures recognised in apt-rpm base paths.
pub const KNOWN_ARCHES: [&str; 12] = [
    "x86_64",
    "x86_64-i586",
    "i586",
    "i686",
    "aarch64",
    "armh",
    "arm",
    "noarch",
    "ppc64le",
    "e2k",
    "riscv64",
    "mipsel",
];

fn known_arch(part: &str) -> bool {
    KNOWN_ARCHES.contains(&part)
}

/// (branch, repo, arch) from the parts of `base_path` (docs/metadata.md).
pub fn layout_fields(base_path: &str) -> (Option<String>, Option<String>, Option<String>) {
    let parts: Vec<&str> = base_path.split('/').collect();
    let s = |x: &str| Some(x.to_owned());
    let arch_if_known = |x: &str| known_arch(x).then(|| x.to_owned());
    if parts.len() == 3 {
        return (s(parts[1]), None, arch_if_known(parts[2]));
    }
    if parts.len() >= 4 && parts[2] == "branch" {
        return (s(parts[1]), s("branch"), arch_if_known(parts[3]));
    }
    let arch = parts.last().and_then(|last| arch_if_known(last));
    let branch = match parts.get(1) {
        Some(second) if !known_arch(second) && *second != "branch" => s(second),
        _ => None,
    };
    let repo =
        (parts.len() >= 2 && parts[parts.len() - 2] == "branch").then(|| "branch".to_owned());
    (branch, repo, arch)
}

fn compression_rank(compression: &str) -> u8 {
    match compression {
        "xz" => 0,
        "gz" => 1,
        "bz2" => 2,
        _ => 3,
    }
}

/// Builds the apt-rpm entries from the pkglist candidates the walk found.
/// Files and directories are used only inside the scan root (`confine`).
pub(crate) fn discover(
    root: &Path,
    confine: &Confine,
    finds: Vec<PkglistFind>,
) -> (Vec<Repository>, Vec<Warning>) {
    // Grouped per base directory (as the reference does: two base paths
    // whose ids collide, such as `a b` and `a_b`, stay two entries).
    let mut groups: BTreeMap<(Vec<u8>, String), Vec<PkglistFind>> = BTreeMap::new();
    for find in finds {
        let base_path = lossy_name(&find.rel);
        let id = safe_path_id(&format!("{base_path}/{}", find.component));
        groups.entry((find.rel.clone(), id)).or_default().push(find);
    }
    let groups: Vec<(String, Vec<PkglistFind>)> = groups
        .into_iter()
        .map(|((_, id), list)| (id, list))
        .collect();
    let results: Vec<(Option<Repository>, Vec<Warning>)> = groups
        .into_par_iter()
        .map(|(id, candidates)| group(root, confine, id, candidates))
        .collect();
    let mut repos = Vec::new();
    let mut warnings = Vec::new();
    for (repo, w) in results {
        repos.extend(repo);
        warnings.extend(w);
    }
    (repos, warnings)
}

fn group(
    root: &Path,
    confine: &Confine,
    id: String,
    mut candidates: Vec<PkglistFind>,
) -> (Option<Repository>, Vec<Warning>) {
    let mut warnings = Vec::new();
    candidates.sort_by(|a, b| {
        (compression_rank(a.compression), &a.file).cmp(&(compression_rank(b.compression), &b.file))
    });
    let several = candidates.len() > 1;
    let Some(chosen) = candidates.into_iter().next() else {
        return (None, warnings);
    };
    let prefix = lossy_name(&chosen.prefix);
    let base_path = lossy_name(&chosen.rel);
    let metadata_path = format!("{base_path}/base/{}", lossy_name(&chosen.file));
    let warn = |message: String| Warning {
        format: "apt-rpm",
        prefix: prefix.clone(),
        path: metadata_path.clone(),
        message,
    };
    if several {
        warnings.push(warn(
            "multiple pkglist variants found for same repository id; selected highest-priority variant".to_owned(),
        ));
    }
    let base_dir = join(root, &chosen.rel);
    let file = join(&base_dir.join("base"), &chosen.file);
    let (sha256, size) = match hash_file(confine, &file) {
        Ok(found) => found,
        Err(OpenError::Outside) => {
            warnings.push(warn(OUTSIDE_MESSAGE.to_owned()));
            return (None, warnings);
        }
        Err(OpenError::Io(e)) => {
            let reason = os_error_text(&e, &file);
            warnings.push(warn(format!("failed to read pkglist metadata: {reason}")));
            return (None, warnings);
        }
    };
    // Only names are published for these; they still must be inside the root.
    let is_dir = |path: &Path| confine.dir_inside(path);
    let is_file = |path: &Path| matches!(confine.is_file(path), Ok(true));
    let component = chosen.component;
    let rpms_dir = format!("RPMS.{component}");
    let package_dir_candidates = if is_dir(&base_dir.join(&rpms_dir)) {
        vec![format!("{base_path}/{rpms_dir}")]
    } else {
        Vec::new()
    };
    let component_release = format!("release.{component}");
    let common_is_file = is_file(&base_dir.join("base").join("release"));
    let (release_path, release_common_path) =
        if is_file(&base_dir.join("base").join(&component_release)) {
            (
                Some(format!("{base_path}/base/{component_release}")),
                common_is_file.then(|| format!("{base_path}/base/release")),
            )
        } else if common_is_file {
            (Some(format!("{base_path}/base/release")), None)
        } else {
            (None, None)
        };
    let (branch, repo, arch) = layout_fields(&base_path);
    let entry = AptRpmRepository {
        id,
        kind: "apt-rpm",
        distro: prefix.clone(),
        prefix,
        base_path,
        metadata_path,
        metadata_compression: chosen.compression,
        metadata_sha256: sha256,
        metadata_size: size,
        component,
        package_dir_candidates,
        index_kind: "apt-rpm-pkglist",
        status: "ok",
        release_path,
        release_common_path,
        branch,
        repo,
        arch,
    };
    (Some(Repository::AptRpm(entry)), warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let some = |x: &str| Some(x.to_owned());
        assert_eq!(
            layout_fields("alt/Sisyphus/x86_64"),
            (some("Sisyphus"), None, some("x86_64"))
        );
        assert_eq!(
            layout_fields("alt/p10/branch/noarch"),
            (some("p10"), some("branch"), some("noarch"))
        );
        assert_eq!(layout_fields("alt/p9/i586/extra"), (some("p9"), None, None));
        assert_eq!(layout_fields("alt/x86_64"), (None, None, some("x86_64")));
        assert_eq!(layout_fields("alt"), (None, None, None));
        assert_eq!(
            layout_fields("a/2024/01/01/p10/branch/armh"),
            (some("2024"), some("branch"), some("armh"))
        );
    }
}
