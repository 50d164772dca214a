//! Integration tests of `mirrorer verify --root-dir` (the standalone form):
//! the real binary on copies of the catalog fixture trees (made with
//! apt-ftparchive, createrepo_c, rpmbuild: tests/fixtures/catalog/make-fixtures.sh),
//! corrupted in a temp directory by each test; signatures with a key made
//! here by the real gpg and checked by the real gpgv; ALT pkglists written
//! here in genpkglist's format (RPM headers with CRPMTAG_FILENAME/FILESIZE/MD5).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::Digest;

use crate::common::{Ran, Run, assert_has, output_ok};

mod rpm;

const TREES: &str = "tests/fixtures/catalog/trees";

/// A copy of the fixture tree `name` in a fresh temp dir: (dir guard, root).
fn copy_tree(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(crate::common::repo_root().join(TREES).join(name))
        .arg(&root)
        .status()
        .expect("cp");
    assert!(status.success());
    (tmp, root)
}

/// `verify --root-dir <root>` with `extra`.
fn verify(root: &Path, extra: &[&str]) -> Run {
    Run::bare()
        .arg("verify")
        .arg("--root-dir")
        .arg(root)
        .args(extra)
}

/// The JSON report a run printed on stdout.
fn report(out: &Ran) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", out.stderr))
}

/// `(repository id, problem, path)` of every listed problem.
fn problems(report: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for repo in report["repositories"].as_array().expect("repositories") {
        for p in repo["problems"].as_array().expect("problems") {
            out.push((
                repo["id"].as_str().unwrap_or_default().to_owned(),
                p["problem"].as_str().unwrap_or_default().to_owned(),
                p["path"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

fn has(report: &Value, id: &str, problem: &str, path: &str) -> bool {
    problems(report)
        .iter()
        .any(|(i, p, f)| i == id && p == problem && f == path)
}

/// The report text with the time and the temp root blanked.
fn snapshot_text(text: &str, root: &Path) -> String {
    let mut out = text.replace(&root.display().to_string(), "<root>");
    out = out
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("\"generated_at\"") {
                "  \"generated_at\": \"<time>\",".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    out
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).expect("read");
    let i = at.min(bytes.len() - 1);
    bytes[i] ^= 0x01;
    fs::write(path, bytes).expect("write");
}

/// The last component of `path` as text (empty for none).
fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn find_one(dir: &Path, prefix: &str) -> PathBuf {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()))
}

#[test]
fn a_clean_apt_tree_is_ok_deep_and_shallow() {
    let (_tmp, root) = copy_tree("apt");
    for deep in ["none", "all"] {
        let r = report(&verify(&root, &["--deep", deep]).success().run());
        assert_eq!(r["schema"], "dist-mirror.verify.v1");
        assert_eq!(r["status"], "ok");
        assert_eq!(r["deep"], deep);
        assert_eq!(r["signatures"], "not_checked");
        assert_eq!(r["totals"]["repositories"], 12);
        assert_eq!(r["totals"]["packages"], 17);
        if deep == "all" {
            assert!(r["totals"]["bytes_hashed"].as_u64().unwrap_or(0) > 0);
        } else {
            assert_eq!(r["totals"]["bytes_hashed"], 0);
        }
    }
    let out = verify(&root, &["--deep", "all"]).run();
    crate::common::assert_snapshot(
        "verify_clean_apt",
        &snapshot_text(&out.stdout, &root),
        Vec::new(),
    );
}

#[test]
fn every_apt_corruption_is_found_and_exit_is_6() {
    let (_tmp, root) = copy_tree("apt");
    let deb = root.join("debian");
    // Missing package, truncated package, one byte changed (same size).
    fs::remove_file(deb.join("pool/main/hello_2.10-3_amd64.deb")).expect("rm");
    let netbase = deb.join("pool/main/netbase_6.4_all.deb");
    let len = fs::metadata(&netbase).expect("stat").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&netbase)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let sensible = find_one(&deb.join("pool/contrib"), "sensible-utils");
    flip_byte(&sensible, 100);
    // A tampered index (same size) and a (component, arch) with no index left.
    let packages = deb.join("dists/bookworm/main/binary-amd64/Packages");
    let text = fs::read_to_string(&packages).expect("read");
    fs::write(
        &packages,
        text.replacen("Package: hello", "Package: hellp", 1),
    )
    .expect("write");
    for entry in fs::read_dir(deb.join("dists/trixie/non-free/binary-amd64")).expect("ls") {
        fs::remove_file(entry.expect("entry").path()).expect("rm");
    }

    // Shallow: everything but the changed byte.
    let main = "debian__bookworm__main__amd64";
    let out = verify(&root, &[])
        .code(6)
        .stderr_has("verify_problem")
        .stderr_has(format!("repository={main}"))
        .stderr_has("problem=size_mismatch")
        .run();
    let r = report(&out);
    assert_eq!(r["status"], "failed");
    assert!(has(
        &r,
        main,
        "missing",
        "debian/pool/main/hello_2.10-3_amd64.deb"
    ));
    assert!(has(
        &r,
        main,
        "size_mismatch",
        "debian/pool/main/netbase_6.4_all.deb"
    ));
    assert!(has(
        &r,
        main,
        "checksum_mismatch",
        "debian/dists/bookworm/main/binary-amd64/Packages"
    ));
    assert!(has(
        &r,
        "debian__trixie__non-free__amd64",
        "index_missing",
        "debian/dists/trixie/non-free/binary-amd64/Packages"
    ));
    let sensible_rel = format!(
        "debian/pool/contrib/{}",
        sensible.file_name().unwrap_or_default().to_string_lossy()
    );
    assert!(
        !problems(&r).iter().any(|(_, _, p)| *p == sensible_rel),
        "a same-size change is invisible without --deep"
    );

    // Deep: the changed byte too.
    let out = verify(&root, &["--deep", "all"]).code(6).run();
    let r = report(&out);
    assert!(has(
        &r,
        "debian__bookworm__contrib__amd64",
        "checksum_mismatch",
        &sensible_rel
    ));
    crate::common::assert_snapshot(
        "verify_corrupted_apt",
        &snapshot_text(&out.stdout, &root),
        Vec::new(),
    );
}

/// A gpg home with one fresh key; returns (home, exported keyring).
pub(crate) fn gpg_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let home = dir.join(format!("gnupg-{name}"));
    fs::create_dir_all(&home).expect("mkdir");
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    let gpg = |args: &[&str]| {
        let mut cmd = std::process::Command::new("gpg");
        cmd.env("GNUPGHOME", &home)
            .args([
                "--batch",
                "--quiet",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args);
        output_ok(&mut cmd, "gpg").stdout
    };
    gpg(&[
        "--quick-gen-key",
        &format!("{name} <{name}@invalid>"),
        "ed25519",
        "sign",
        "never",
    ]);
    let keyring = dir.join(format!("{name}.gpg"));
    fs::write(&keyring, gpg(&["--export"])).expect("write keyring");
    (home, keyring)
}

fn clearsign(home: &Path, release: &Path, inrelease: &Path) {
    let status = std::process::Command::new("gpg")
        .env("GNUPGHOME", home)
        .args([
            "--batch",
            "--quiet",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .arg("--output")
        .arg(inrelease)
        .arg("--clearsign")
        .arg(release)
        .status()
        .expect("gpg");
    assert!(status.success());
}

#[test]
fn signatures_are_checked_with_gpgv_per_prefix() {
    let (tmp, root) = copy_tree("apt");
    let (home, keyring) = gpg_key(tmp.path(), "mirror");
    let (_other_home, other) = gpg_key(tmp.path(), "stranger");
    let suite = root.join("debian/dists/bookworm");
    clearsign(&home, &suite.join("Release"), &suite.join("InRelease"));
    let flag = format!("debian={}", keyring.display());
    let r = report(&verify(&root, &["--format", "apt", "--keyring", &flag]).run());
    assert_eq!(r["signatures"], "checked");
    let sig_problems: Vec<_> = problems(&r)
        .into_iter()
        .filter(|(_, p, _)| p == "signature_invalid")
        .collect();
    // bookworm verifies; bullseye and trixie have neither InRelease nor Release.gpg.
    assert!(
        !sig_problems
            .iter()
            .any(|(id, _, _)| id.starts_with("debian__bookworm"))
    );
    assert!(
        sig_problems
            .iter()
            .any(|(id, _, p)| id == "debian__trixie__main__amd64"
                && p == "debian/dists/trixie/InRelease")
    );
    // Other prefixes are not checked.
    assert!(
        !sig_problems
            .iter()
            .any(|(id, _, _)| id.starts_with("debian-security"))
    );

    // A wrong keyring, then a tampered signed text.
    let flag_other = format!("debian={}", other.display());
    let r = report(&verify(&root, &["--format", "apt", "--keyring", &flag_other]).run());
    assert!(has(
        &r,
        "debian__bookworm__main__amd64",
        "signature_invalid",
        "debian/dists/bookworm/InRelease"
    ));
    let text = fs::read_to_string(suite.join("InRelease")).expect("read");
    fs::write(
        suite.join("InRelease"),
        text.replacen("Label: Debian", "Label: Debiam", 1),
    )
    .expect("write");
    let r = report(
        &verify(&root, &["--format", "apt", "--keyring", &flag])
            .code(6)
            .run(),
    );
    assert!(has(
        &r,
        "debian__bookworm__contrib__arm64",
        "signature_invalid",
        "debian/dists/bookworm/InRelease"
    ));

    // Usage errors.
    for bad in ["debian", "=x", "debian=/nonexistent/keyring.gpg"] {
        verify(&root, &["--keyring", bad]).code(2).run();
    }
}

/// One RPM header structure with the given (tag, type, data) entries.
fn rpm_header(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    for (tag, ty, bytes) in entries {
        if *ty == 4 {
            while data.len() % 4 != 0 {
                data.push(0);
            }
        }
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&ty.to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(bytes);
    }
    let mut out = vec![0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend(index);
    out.extend(data);
    out
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Writes `base/pkglist.classic` listing `files` (name, size, md5) as genpkglist does.
fn write_pkglist(base: &Path, files: &[(String, u64, String)]) {
    let mut out = Vec::new();
    for (name, size, md5) in files {
        out.extend(rpm_header(&[
            (1000, 6, cstr("pkg")),
            (1_000_000, 6, cstr(name)),
            (1_000_001, 4, (*size as u32).to_be_bytes().to_vec()),
            (1_000_005, 6, cstr(md5)),
        ]));
    }
    fs::write(base.join("base/pkglist.classic"), out).expect("write pkglist");
}

fn rpms_of(base: &Path) -> Vec<(String, u64, String)> {
    let mut files: Vec<_> = fs::read_dir(base.join("RPMS.classic"))
        .expect("ls")
        .map(|e| {
            let p = e.expect("entry").path();
            let bytes = fs::read(&p).expect("read");
            let md5: String = md5::Md5::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (file_name(&p), bytes.len() as u64, md5)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn apt_rpm_pkglists_are_checked_and_problems_are_logged_with_a_cap() {
    let (_tmp, root) = copy_tree("aptrpm");
    let base = root.join("alt-mirror");
    let files = rpms_of(&base);
    assert_eq!(files.len(), 2);
    write_pkglist(&base, &files);
    let id = "alt-mirror__classic";
    let ok = report(&verify(&root, &["--deep", "all"]).run());
    let repo = ok["repositories"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["id"] == id))
        .expect("the alt-mirror repository")
        .clone();
    assert_eq!(repo["status"], "ok", "{repo}");
    assert_eq!(repo["packages"], 2);

    // One byte changed (deep only), one truncated, 25 missing.
    flip_byte(&base.join("RPMS.classic").join(&files[0].0), 200);
    let second = base.join("RPMS.classic").join(&files[1].0);
    let len = fs::metadata(&second).expect("stat").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&second)
        .and_then(|f| f.set_len(len - 1))
        .expect("truncate");
    let mut listed = files.clone();
    for i in 0..25 {
        listed.push((format!("gone-{i:02}.rpm"), 10, "00".repeat(16)));
    }
    write_pkglist(&base, &listed);
    let out = verify(&root, &["--deep", "all", "--format", "apt-rpm"])
        .code(6)
        .run();
    let r = report(&out);
    let rel = |n: &str| format!("alt-mirror/RPMS.classic/{n}");
    assert!(has(&r, id, "checksum_mismatch", &rel(&files[0].0)));
    assert!(has(&r, id, "size_mismatch", &rel(&files[1].0)));
    assert!(has(&r, id, "missing", &rel("gone-24.rpm")));
    let stderr = &out.stderr;
    let logged = stderr
        .lines()
        .filter(|l| l.contains("verify_problem ") && l.contains(&format!("repository={id}")))
        .count();
    assert_eq!(logged, 20, "{stderr}");
    assert!(
        stderr.lines().any(|l| l.contains("verify_problems_more")
            && l.contains(&format!("repository={id}"))
            && l.contains("count=7")),
        "{stderr}"
    );
    // A name with a directory leaves RPMS.<component>.
    write_pkglist(&base, &[("../../etc/passwd".into(), 1, "00".into())]);
    let r = report(&verify(&root, &["--format", "apt-rpm"]).run());
    assert!(has(&r, id, "outside_tree", "../../etc/passwd"));
}

#[test]
fn the_shrink_guard_compares_with_the_previous_report() {
    let (tmp, root) = copy_tree("apt");
    let previous = tmp.path().join("previous.json");
    // --output writes no report to stdout.
    verify(&root, &["--output", previous.to_str().unwrap_or_default()])
        .success()
        .stdout_is("")
        .run();
    fs::remove_dir_all(root.join("debian/dists/trixie")).expect("rm suite");
    let prev = previous.to_str().unwrap_or_default();
    let r = report(&verify(&root, &["--previous", prev]).code(6).run());
    assert!(has(
        &r,
        "debian__trixie__main__amd64",
        "shrunk",
        "debian__trixie__main__amd64"
    ));
    assert!(has(
        &r,
        "debian__trixie__non-free__amd64",
        "shrunk",
        "debian__trixie__non-free__amd64"
    ));
    assert_eq!(r["totals"]["problems"], 2);
    verify(&root, &["--previous", prev, "--allow-shrink"])
        .success()
        .run();
    // A package count falling by more than the limit (apt-rpm: 2 -> 1 = 50 %).
    let (tmp2, alt) = copy_tree("aptrpm");
    let base = alt.join("alt-mirror");
    let files = rpms_of(&base);
    write_pkglist(&base, &files);
    let before = tmp2.path().join("before.json");
    verify(
        &alt,
        &[
            "--format",
            "apt-rpm",
            "--output",
            before.to_str().unwrap_or_default(),
        ],
    )
    .run();
    write_pkglist(&base, &files[..1]);
    let b = before.to_str().unwrap_or_default();
    let r = report(&verify(&alt, &["--format", "apt-rpm", "--previous", b]).run());
    assert!(has(
        &r,
        "alt-mirror__classic",
        "shrunk",
        "alt-mirror__classic"
    ));
    let r = report(
        &verify(
            &alt,
            &[
                "--format",
                "apt-rpm",
                "--previous",
                b,
                "--max-shrink-percent",
                "60",
            ],
        )
        .run(),
    );
    assert!(!has(
        &r,
        "alt-mirror__classic",
        "shrunk",
        "alt-mirror__classic"
    ));
    // A previous file that is not a report: the tool fails (exit 1).
    verify(&root, &["--previous", "Cargo.toml"]).code(1).run();
}

#[test]
fn the_junit_report_parses_with_one_case_per_repository() {
    let (tmp, root) = copy_tree("apt");
    fs::remove_file(root.join("debian/pool/main/hello_2.10-3_amd64.deb")).expect("rm");
    let junit = tmp.path().join("junit.xml");
    let r = report(
        &verify(&root, &["--junit", junit.to_str().unwrap_or_default()])
            .code(6)
            .run(),
    );
    // Python's XML parser and the structure GitLab reads (testsuites > testsuite > testcase [failure]).
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
suites = root.findall("testsuite")
assert len(suites) == 1
s = suites[0]
for attr in ("name", "tests", "failures"):
    assert attr in s.attrib, attr
cases = s.findall("testcase")
assert int(s.get("tests")) == len(cases)
failed = [c for c in cases if c.find("failure") is not None]
assert int(s.get("failures")) == len(failed)
for c in cases:
    assert c.get("name") and c.get("classname"), c.attrib
for c in failed:
    print(c.get("name") + "\t" + c.find("failure").text.replace("\n", "|"))
print("cases", len(cases))
"#;
    let py = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&junit)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&py.stdout).into_owned();
    assert!(
        py.status.success(),
        "{}{}",
        text,
        String::from_utf8_lossy(&py.stderr)
    );
    assert_has(&text, &format!("cases {}", r["totals"]["repositories"]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("debian__bookworm__main__amd64\t")
                && l.contains("missing debian/pool/main/hello_2.10-3_amd64.deb")),
        "{text}"
    );
}

#[test]
fn usage_errors_are_exit_2() {
    let (_tmp, root) = copy_tree("edge");
    for args in [
        vec!["--deep", "changed"],
        vec!["--deep", "some"],
        vec!["--format", "deb"],
        vec!["--max-shrink-percent", "101"],
    ] {
        verify(&root, &args).code(2).run();
    }
    verify(&root.join("nope"), &[]).code(2).run();
    // The edge tree itself (hostile layouts) verifies without the tool failing.
    let out = verify(&root, &["--deep", "all"]).run();
    assert!(matches!(out.code(), Some(0 | 6)), "{}", out.stderr);
    report(&out);
}
