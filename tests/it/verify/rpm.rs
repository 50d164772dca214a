//! `verify --root-dir` on createrepo repositories: primaries streamed in
//! every compression, hrefs kept inside the base, and a primary that would
//! make the parser hold a huge text node.

use std::fs;
use std::path::Path;

use sha2::Digest;

use super::{copy_tree, file_name, find_one, has, problems, report, verify};

/// The file name and size of the fixture package `mirrorer-fixture-a` of
/// the repository `base`.
fn package_a(base: &Path) -> (String, u64) {
    let pkg = find_one(&base.join("Packages"), "mirrorer-fixture-a");
    (file_name(&pkg), fs::metadata(&pkg).expect("stat").len())
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replaces the repository's metadata with one plain primary listing `packages` (raw XML).
fn write_rpm_repo(base: &Path, packages: &str) {
    write_rpm_repo_with(base, packages, None);
}

/// The same, the primary compressed by the real tool `compress` (`xz`,
/// `bzip2`, `zstd`, `gzip`) with suffix `ext`, or replaced by `garbage` bytes.
fn write_rpm_repo_with(base: &Path, packages: &str, compress: Option<(&str, &str, Option<&[u8]>)>) {
    let primary = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"2\">\n{packages}</metadata>\n"
    );
    let repodata = base.join("repodata");
    fs::remove_dir_all(&repodata).expect("rm repodata");
    fs::create_dir_all(&repodata).expect("mkdir");
    fs::write(repodata.join("primary.xml"), &primary).expect("write");
    let mut name = "primary.xml".to_owned();
    if let Some((tool, ext, garbage)) = compress {
        let status = std::process::Command::new(tool)
            .arg("-q")
            .arg(repodata.join("primary.xml"))
            .status()
            .expect("compressor");
        assert!(status.success(), "{tool}");
        name = format!("primary.xml.{ext}");
        if let Some(garbage) = garbage {
            fs::write(repodata.join(&name), garbage).expect("write");
        }
        let _ = fs::remove_file(repodata.join("primary.xml"));
    }
    let bytes = fs::read(repodata.join(&name)).expect("read primary");
    let repomd = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\"><revision>1</revision><data type=\"primary\"><checksum type=\"sha256\">{}</checksum><location href=\"repodata/{name}\"/><timestamp>1</timestamp><size>{}</size></data></repomd>\n",
        sha256_hex(&bytes),
        bytes.len()
    );
    fs::write(repodata.join("repomd.xml"), repomd).expect("write");
}

fn rpm_package(href: &str, size: u64, sha: &str, base_attr: &str) -> String {
    format!(
        "<package type=\"rpm\"><name>x</name><checksum type=\"sha256\" pkgid=\"YES\">{sha}</checksum><size package=\"{size}\" installed=\"1\" archive=\"1\"/><location{base_attr} href=\"{href}\"/><format><rpm:license>MIT</rpm:license></format></package>\n"
    )
}

#[test]
fn rpm_primaries_are_streamed_and_hrefs_stay_in_the_base() {
    let (_tmp, root) = copy_tree("rpm");
    // The createrepo_c repositories as made: ok, deep.
    let r = report(&verify(&root, &["--deep", "all"]).run());
    for id in [
        "other__custom",
        "fedora__releases__40__Everything__x86_64__os",
    ] {
        let repo = r["repositories"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == id))
            .expect(id);
        assert_eq!(repo["status"], "ok", "{repo}");
        assert_eq!(repo["packages"], 2);
    }
    // The fixture's tampered primary: a data file with the wrong checksum.
    assert!(has(
        &r,
        "centos__7__os__x86_64__os",
        "checksum_mismatch",
        "centos/7/os/x86_64/os/repodata/c329d13a72c10794a98ed782ebc5f1a0a5f053829f85b5268cf6aa1eef47d9c4-primary.xml.gz"
    ));
    assert!(has(
        &r,
        "other__no-primary",
        "index_missing",
        "other/no-primary/repodata/repomd.xml"
    ));

    // A hand-made primary: a good package, one changed byte, xml:base, a climbing href, a missing file.
    let base = root.join("other/custom");
    let pkg = find_one(&base.join("Packages"), "mirrorer-fixture-a");
    let bytes = fs::read(&pkg).expect("read");
    let name = file_name(&pkg);
    let other = find_one(&base.join("Packages"), "mirrorer-fixture-b");
    let other_name = file_name(&other);
    let other_len = fs::metadata(&other).expect("stat").len();
    let packages = [
        rpm_package(
            &format!("Packages/{name}"),
            bytes.len() as u64,
            &sha256_hex(&bytes),
            "",
        ),
        rpm_package(
            &format!("Packages/{other_name}"),
            other_len,
            &"0".repeat(64),
            "",
        ),
        rpm_package(
            &format!("Packages/{name}"),
            bytes.len() as u64,
            &sha256_hex(&bytes),
            " xml:base=\"http://elsewhere.invalid/\"",
        ),
        rpm_package("../../rpm/../../../etc/passwd", 1, &"0".repeat(64), ""),
        rpm_package("Packages/absent.rpm", 1, &"0".repeat(64), ""),
    ]
    .concat();
    write_rpm_repo(&base, &packages);
    let r = report(
        &verify(&root, &["--deep", "all", "--format", "rpm"])
            .code(6)
            .run(),
    );
    let id = "other__custom";
    let listed: Vec<_> = problems(&r)
        .into_iter()
        .filter(|(i, _, _)| i == id)
        .collect();
    assert!(
        has(
            &r,
            id,
            "checksum_mismatch",
            &format!("other/custom/Packages/{other_name}")
        ),
        "{listed:?}"
    );
    assert!(
        has(&r, id, "outside_tree", &format!("Packages/{name}")),
        "{listed:?}"
    );
    assert!(
        has(&r, id, "outside_tree", "../../rpm/../../../etc/passwd"),
        "{listed:?}"
    );
    assert!(
        has(&r, id, "missing", "other/custom/Packages/absent.rpm"),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 4, "{listed:?}");
    let repo = r["repositories"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id))
        .cloned();
    crate::common::assert_snapshot(
        "verify_rpm_handmade",
        &serde_json::to_string_pretty(&repo).unwrap_or_default(),
        Vec::new(),
    );
}

#[test]
fn primaries_in_every_compression_are_streamed_and_garbage_is_unreadable() {
    let (_tmp, root) = copy_tree("rpm");
    let base = root.join("other/custom");
    let (name, len) = package_a(&base);
    let packages = [
        rpm_package(&format!("Packages/{name}"), len, &"0".repeat(64), ""),
        rpm_package("Packages/absent.rpm", 1, &"0".repeat(64), ""),
    ]
    .concat();
    for (tool, ext) in [
        ("xz", "xz"),
        ("bzip2", "bz2"),
        ("zstd", "zst"),
        ("gzip", "gz"),
    ] {
        write_rpm_repo_with(&base, &packages, Some((tool, ext, None)));
        let r = report(&verify(&root, &["--format", "rpm"]).run());
        let listed: Vec<_> = problems(&r)
            .into_iter()
            .filter(|(i, _, _)| i == "other__custom")
            .collect();
        assert_eq!(
            listed,
            vec![(
                "other__custom".to_owned(),
                "missing".to_owned(),
                "other/custom/Packages/absent.rpm".to_owned()
            )],
            "{ext}"
        );
        // Deep: the wrong checksum of the present one.
        let r = report(&verify(&root, &["--format", "rpm", "--deep", "all"]).run());
        assert!(
            has(
                &r,
                "other__custom",
                "checksum_mismatch",
                &format!("other/custom/Packages/{name}")
            ),
            "{ext}"
        );
    }
    write_rpm_repo_with(&base, &packages, Some(("xz", "xz", Some(b"not xz at all"))));
    let r = report(&verify(&root, &["--format", "rpm"]).code(6).run());
    assert!(has(
        &r,
        "other__custom",
        "unreadable",
        "other/custom/repodata/primary.xml.xz"
    ));
}

/// A primary holding 40 MiB of text without a `<` (a few hundred KiB
/// gzipped): `unreadable`, naming the cap, instead of the parser holding it
/// whole; the package before it was still checked.
#[test]
fn a_primary_text_node_over_the_cap_is_unreadable() {
    let (_tmp, root) = copy_tree("rpm");
    let base = root.join("other/custom");
    let (name, len) = package_a(&base);
    let huge = format!(
        "<package type=\"rpm\"><description>{}</description></package>\n",
        "a".repeat(40 << 20)
    );
    let packages = [
        rpm_package("Packages/absent.rpm", 1, &"0".repeat(64), ""),
        rpm_package(&format!("Packages/{name}"), len, &"0".repeat(64), ""),
        huge,
    ]
    .concat();
    write_rpm_repo_with(&base, &packages, Some(("gzip", "gz", None)));
    let out = verify(&root, &["--format", "rpm"]).code(6).run();
    let r = report(&out);
    let primary = "other/custom/repodata/primary.xml.gz";
    let problem = r["repositories"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == "other__custom"))
        .and_then(|repo| repo["problems"].as_array())
        .and_then(|ps| ps.iter().find(|p| p["path"] == primary))
        .unwrap_or_else(|| panic!("no problem for {primary}: {r}"));
    assert_eq!(problem["problem"], "unreadable", "{problem}");
    assert!(
        problem["actual"]
            .as_str()
            .is_some_and(|a| a.contains("more than 16777216 bytes without markup")),
        "{problem}"
    );
    assert!(has(
        &r,
        "other__custom",
        "missing",
        "other/custom/Packages/absent.rpm"
    ));
}
