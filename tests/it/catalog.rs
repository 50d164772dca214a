//! Integration tests of `mirrorer catalog`: the real binary on the committed
//! fixture trees (tests/fixtures/catalog/trees, built by make-fixtures.sh)
//! compared byte for byte with the goldens of mirrorer 0.1.0
//! (tests/fixtures/catalog/golden, made by make-goldens.sh), except for
//! `generated_at` and the reason text of `failed to parse ...: <reason>`
//! warnings; plus the command's own behaviour (output file, summary, errors,
//! unreadable files, shard resolution).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{Run, stderr};

const GOLDEN: &str = "tests/fixtures/catalog/golden";
const TREES: &str = "tests/fixtures/catalog/trees";

/// Text with every byte that is not valid UTF-8 replaced by one U+FFFD (our
/// documented rendering of non-UTF-8 file names; the reference writes the raw
/// bytes).
fn lossy_per_byte(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('\u{fffd}');
        }
    }
    out
}

/// Blanks the two parts the contract lets differ: the `generated_at` value
/// and the tail of `failed to parse ...: <reason>` messages.
fn normalise(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("\"generated_at\": ") {
                let indent = &line[..line.len() - trimmed.len()];
                format!("{indent}\"generated_at\": \"<time>\",")
            } else if let Some(pos) = line.find("\"failed to parse ") {
                let rest = &line[pos..];
                match rest.find(": ") {
                    Some(colon) => format!("{}: <reason>\",", &line[..pos + colon]),
                    None => line.to_owned(),
                }
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `generated_at` is ISO 8601 UTC with microseconds (or none) and `Z`.
fn assert_generated_at_format(text: &str) {
    let value = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("\"generated_at\": \""))
        .expect("generated_at present")
        .trim_end_matches(['"', ',']);
    let (seconds, rest) = value.split_at(19);
    assert!(
        chrono::NaiveDateTime::parse_from_str(seconds, "%Y-%m-%dT%H:%M:%S").is_ok(),
        "generated_at {value}"
    );
    assert!(
        rest == "Z" || (rest.len() == 8 && rest.starts_with('.') && rest.ends_with('Z')),
        "generated_at {value}"
    );
}

/// Runs the golden case `name` of cases.tsv and compares with its golden.
fn golden_case(name: &str) {
    let cases = fs::read_to_string(format!("{GOLDEN}/cases.tsv")).expect("cases.tsv");
    let line = cases
        .lines()
        .find(|l| l.split('\t').next() == Some(name))
        .unwrap_or_else(|| panic!("case {name} in cases.tsv"));
    let fields: Vec<&str> = line.split('\t').collect();
    let (envs, args) = (fields[1], fields[2]);
    let assignments = envs.split_whitespace().filter(|_| envs != "-");
    let expected_rc: i32 = fs::read_to_string(format!("{GOLDEN}/{name}.rc"))
        .expect("golden rc")
        .trim()
        .parse()
        .expect("rc number");
    let output = Run::bare()
        .arg("catalog")
        .args(args.split_whitespace())
        .envs(assignments.map(|a| a.split_once('=').expect("KEY=VALUE")))
        .code(expected_rc)
        .run();
    let golden = lossy_per_byte(&fs::read(format!("{GOLDEN}/{name}.out")).expect("golden output"));
    let ours = String::from_utf8(output.output.stdout).expect("our output is UTF-8");
    if golden.contains("\"generated_at\"") {
        assert_generated_at_format(&ours);
    }
    assert_eq!(
        normalise(&ours),
        normalise(&golden),
        "output of case {name}"
    );
    assert_eq!(
        ours.ends_with('\n'),
        golden.ends_with('\n'),
        "final newline of case {name}"
    );
}

macro_rules! golden_tests {
    ($($test:ident => $case:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                golden_case($case);
            }
        )*
    };
}

golden_tests! {
    golden_apt => "apt",
    golden_rpm => "rpm",
    golden_aptrpm => "aptrpm",
    golden_edge => "edge",
    golden_edge_apt_only => "edge-apt-only",
    golden_edge_rpm_aptrpm => "edge-rpm-aptrpm",
    golden_edge_summary => "edge-summary",
    golden_rpm_summary => "rpm-summary",
    golden_normalised_root => "normalised-root",
    golden_nonutf8 => "nonutf8",
    golden_crosslinks => "crosslinks",
    golden_dotdot_root => "dotdot-root",
}

#[test]
fn every_golden_case_has_a_test() {
    let cases = fs::read_to_string(format!("{GOLDEN}/cases.tsv")).expect("cases.tsv");
    let names: Vec<&str> = cases
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .collect();
    let tested = [
        "apt",
        "rpm",
        "aptrpm",
        "edge",
        "edge-apt-only",
        "edge-rpm-aptrpm",
        "edge-summary",
        "rpm-summary",
        "normalised-root",
        "nonutf8",
        "crosslinks",
        "dotdot-root",
    ];
    assert_eq!(names, tested);
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

#[test]
fn output_file_is_written_atomically_and_stdout_stays_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("repo_catalog.json");
    fs::write(&target, "old").expect("previous file");
    let output = Run::bare()
        .args([
            "catalog",
            "--root-dir",
            &format!("{TREES}/aptrpm"),
            "--shard",
            "fixture",
        ])
        .arg("--output")
        .arg(&target)
        .success()
        .run();
    assert!(
        output.stdout.is_empty(),
        "stdout must be empty with --output"
    );
    assert!(
        stderr(&output).contains("repo_catalog_written"),
        "{}",
        stderr(&output)
    );
    let written = fs::read_to_string(&target).expect("written catalog");
    let golden = fs::read_to_string(format!("{GOLDEN}/aptrpm.out")).expect("golden");
    assert_eq!(normalise(&written), normalise(&golden));
    let mode = fs::metadata(&target)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
    let names: Vec<String> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["repo_catalog.json"], "no temp file left behind");
}

#[test]
fn summary_with_output_prints_the_summary_and_logs_only_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("catalog.json");
    let output = Run::bare()
        .args([
            "catalog",
            "--root-dir",
            &format!("{TREES}/edge"),
            "--summary-json",
            "--shard",
            "s",
        ])
        .arg("--output")
        .arg(&target)
        .success()
        .run();
    let written = json(&fs::read(&target).expect("catalog written"));
    let summary = String::from_utf8(output.output.stdout.clone()).expect("utf-8");
    let expected = format!(
        "{{\"formats\": [\"apt\", \"apt-rpm\", \"rpm\"], \"repositories_count\": {}, \"warnings_count\": {}}}\n",
        written["repositories"].as_array().expect("list").len(),
        written["warnings"].as_array().expect("list").len(),
    );
    assert_eq!(summary, expected);
    let err = stderr(&output);
    assert!(
        !err.contains(" INFO "),
        "INFO logged with --summary-json: {err}"
    );
    assert!(
        err.contains("catalog_warning"),
        "warnings are logged: {err}"
    );
    // With --log-level INFO given explicitly, INFO events appear again.
    Run::bare()
        .args([
            "--log-level",
            "INFO",
            "catalog",
            "--root-dir",
            &format!("{TREES}/edge"),
            "--summary-json",
        ])
        .arg("--output")
        .arg(&target)
        .stderr_has("repo_catalog_written")
        .run();
}

#[test]
fn missing_or_non_directory_root_is_a_usage_error() {
    let output = Run::bare()
        .args(["catalog", "--root-dir", "/nonexistent/catalog-root"])
        .code(2)
        .stderr_has("/nonexistent/catalog-root")
        .run();
    assert!(output.stdout.is_empty());
    Run::bare()
        .args(["catalog", "--root-dir", &format!("{TREES}/apt/README")])
        .code(2)
        .stderr_has("not a directory")
        .run();
}

#[test]
fn unsupported_formats_are_named_sorted() {
    let output = Run::bare()
        .args([
            "catalog",
            "--root-dir",
            TREES,
            "--format",
            "Zypp",
            "--format",
            "apt",
            "--format",
            "deb",
        ])
        .code(2)
        .stderr_has("unsupported catalog formats: deb, zypp")
        .run();
    assert!(output.stdout.is_empty());
}

#[test]
fn shard_comes_from_flag_then_env_then_host_name() {
    let root = format!("{TREES}/aptrpm");
    let shard_of = |run: Run| {
        json(&run.success().run().output.stdout)["shard"]
            .as_str()
            .expect("shard")
            .to_owned()
    };
    let flag = shard_of(Run::bare().env("DIST_MIRROR_SHARD", "env-shard").args([
        "catalog",
        "--root-dir",
        &root,
        "--shard",
        "flag-shard",
    ]));
    assert_eq!(flag, "flag-shard");
    let env = shard_of(Run::bare().env("DIST_MIRROR_SHARD", "env-shard").args([
        "catalog",
        "--root-dir",
        &root,
    ]));
    assert_eq!(env, "env-shard");
    let host = shard_of(Run::bare().args(["catalog", "--root-dir", &root]));
    let expected = fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    assert_eq!(host, expected.trim());
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        let file_type = entry.file_type().expect("type");
        if file_type.is_symlink() {
            let link = fs::read_link(entry.path()).expect("readlink");
            std::os::unix::fs::symlink(link, &target).expect("symlink");
        } else if file_type.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn find_one(dir: &Path, contains: &str) -> PathBuf {
    fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().contains(contains))
        .unwrap_or_else(|| panic!("{contains} in {}", dir.display()))
}

/// Unreadable files and directories become warnings, never a crash (an
/// unreadable directory is a `cannot read directory` warning for each walk
/// that would have entered it). Run as an unprivileged user when the tests run as root, since root
/// reads everything.
#[test]
fn unreadable_files_and_directories_become_warnings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    chmod(tmp.path(), 0o755);
    let root = tmp.path().join("root");
    copy_tree(&Path::new(TREES).join("edge/debian"), &root.join("debian"));
    copy_tree(&Path::new(TREES).join("rpm/other"), &root.join("other"));
    copy_tree(&Path::new(TREES).join("aptrpm/alt"), &root.join("alt"));
    chmod(
        &root.join("debian/dists/stable/main/binary-amd64/Packages.xz"),
        0,
    );
    chmod(&root.join("debian/dists/sha1-fallback/Release"), 0);
    chmod(
        &find_one(&root.join("other/custom/repodata"), "filelists"),
        0,
    );
    chmod(&root.join("other/no-href/repodata/repomd.xml"), 0);
    chmod(&root.join("alt/x86_64/base/pkglist.classic"), 0);
    chmod(&root.join("other/no-primary"), 0);
    chmod(&root.join("alt/Sisyphus"), 0);

    // The unprivileged user may not reach the target directory: as root,
    // a copy runs as nobody.
    let output = Run::bare()
        .args(["catalog", "--shard", "s", "--root-dir"])
        .arg(&root)
        .unprivileged(tmp.path())
        .success()
        .run();
    let catalog = json(&output.output.stdout);
    let root_text = root.display().to_string();
    let warnings: Vec<(String, String)> = catalog["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| {
            w["message"]
                .as_str()
                .unwrap_or("")
                .contains("Permission denied")
        })
        .map(|w| {
            (
                w["path"].as_str().expect("path").to_owned(),
                w["message"]
                    .as_str()
                    .expect("message")
                    .replace(&root_text, "ROOT"),
            )
        })
        .collect();
    let filelists = find_one(&root.join("other/custom/repodata"), "filelists");
    let denied = |path: &str| format!("[Errno 13] Permission denied: 'ROOT/{path}'");
    let packages = |suite: &str| format!("debian/dists/{suite}/main/binary-amd64/Packages.xz");
    let unreadable = |dir: &str| {
        (
            dir.to_owned(),
            format!("cannot read directory: {}", denied(dir)),
        )
    };
    let expected = vec![
        (
            packages("bookworm"),
            format!(
                "failed to read metadata file: {}",
                denied(&packages("bookworm"))
            ),
        ),
        (
            "debian/dists/sha1-fallback/Release".to_owned(),
            format!(
                "failed to parse Release/InRelease: {}",
                denied("debian/dists/sha1-fallback/Release")
            ),
        ),
        (
            packages("stable"),
            format!(
                "failed to read metadata file: {}",
                denied(&packages("stable"))
            ),
        ),
        unreadable("alt/Sisyphus"),
        (
            "alt/x86_64/base/pkglist.classic".to_owned(),
            format!(
                "failed to read pkglist metadata: {}",
                denied("alt/x86_64/base/pkglist.classic")
            ),
        ),
        unreadable("other/no-primary"),
        unreadable("alt/Sisyphus"),
        (
            "other/custom/repodata/repomd.xml".to_owned(),
            format!(
                "failed to parse repomd.xml: [Errno 13] Permission denied: '{}'",
                filelists.display().to_string().replace(&root_text, "ROOT")
            ),
        ),
        (
            "other/no-href/repodata/repomd.xml".to_owned(),
            format!(
                "failed to parse repomd.xml: {}",
                denied("other/no-href/repodata/repomd.xml")
            ),
        ),
        unreadable("other/no-primary"),
    ];
    assert_eq!(warnings, expected);
    let repos = catalog["repositories"].as_array().expect("repositories");
    let by_id = |id: &str| repos.iter().find(|r| r["id"] == id);
    assert_eq!(by_id("other__custom").expect("custom")["status"], "broken");
    assert_eq!(
        by_id("other__custom").expect("custom")["metadata"],
        serde_json::json!([])
    );
    assert_eq!(
        by_id("other__no-href").expect("no-href")["status"],
        "broken"
    );
    for (id, why) in [
        ("other__no-primary", "unreadable directory skipped"),
        (
            "alt__Sisyphus__aarch64__classic",
            "unreadable directory skipped",
        ),
        ("alt__x86_64__classic", "unreadable pkglist gives no entry"),
        (
            "debian__stable__main__amd64",
            "unreadable Packages gives no entry",
        ),
    ] {
        assert!(by_id(id).is_none(), "{id}: {why}");
    }
    assert!(
        by_id("alt__p9__i586__extra__classic").is_some(),
        "readable entries stay"
    );
}

/// A directory whose listing needs several `getdents64` batches (about 220 KB
/// of records) is read completely, and entries come out in name order.
#[test]
fn large_directories_are_read_completely() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("alt");
    let count = 1000;
    for i in 0..count {
        let base = prefix
            .join(format!("{i:05}-{}", "x".repeat(200)))
            .join("base");
        fs::create_dir_all(&base).expect("mkdir");
        fs::write(base.join("pkglist.classic"), i.to_string()).expect("pkglist");
    }
    let output = Run::bare()
        .args([
            "catalog",
            "--format",
            "apt-rpm",
            "--shard",
            "s",
            "--root-dir",
        ])
        .arg(tmp.path())
        .success()
        .run();
    let catalog = json(&output.output.stdout);
    let paths: Vec<&str> = catalog["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .map(|r| r["base_path"].as_str().expect("base_path"))
        .collect();
    let expected: Vec<String> = (0..count)
        .map(|i| format!("alt/{i:05}-{}", "x".repeat(200)))
        .collect();
    assert_eq!(paths, expected);
}
