//! Hostile repository trees (issue 10, "Hardening"): the real binary
//! (`mirrorer catalog --root-dir DIR`) on trees built in a temp directory
//! whose metadata and symlinks try to make the catalog expand XML entities
//! without bound, open files of the host, walk out of the scan root, hide
//! unreadable directories, or take quadratic time. Each test names the
//! defect class it covers; every file outside the scan root holds a marker
//! whose sha256 must never appear in the catalog.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::common::{Ran, Run};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A temp directory holding `root/` (the scan root) and `outside/` (files of
/// "the host" that the catalog must never read).
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        // Traversable by the unprivileged user some tests run the binary as.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::create_dir_all(dir.path().join("root")).expect("root");
        fs::create_dir_all(dir.path().join("outside")).expect("outside");
        Tree { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `content` at `rel` (relative to the temp directory), parents
    /// created; returns the path.
    fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, content).expect("write");
        path
    }

    fn link(&self, rel: &str, target: &Path) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        symlink(target, &path).expect("symlink");
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `catalog --shard s --root-dir <root>` (the harness's clean environment).
fn catalog_run(root: &Path) -> Run {
    Run::bare()
        .args(["catalog", "--shard", "s", "--root-dir"])
        .arg(root)
}

/// Runs the catalog on `root`; asserts exit 0 and returns the catalog.
fn run_catalog(root: &Path) -> (Value, String) {
    parse_success(catalog_run(root).success().run())
}

/// The catalog and its text, from a run that must have exited 0.
fn parse_success(ran: Ran) -> (Value, String) {
    let catalog: Value = serde_json::from_str(&ran.stdout).expect("catalog JSON");
    (catalog, ran.stdout)
}

fn repositories(catalog: &Value) -> &Vec<Value> {
    catalog["repositories"].as_array().expect("repositories")
}

/// (format, path, message) of every warning.
fn warnings(catalog: &Value) -> Vec<(String, String, String)> {
    catalog["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| {
            let s = |k: &str| w[k].as_str().expect("string").to_owned();
            (s("format"), s("path"), s("message"))
        })
        .collect()
}

fn has_warning(catalog: &Value, format: &str, path: &str, message_part: &str) -> bool {
    warnings(catalog)
        .iter()
        .any(|(f, p, m)| f == format && p == path && m.contains(message_part))
}

const PRIMARY: &[u8] = b"<?xml version=\"1.0\"?>\n<metadata packages=\"0\"/>\n";

fn repomd(primary_href: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <repomd xmlns=\"http://linux.duke.edu/metadata/repo\">\n\
         <data type=\"primary\"><checksum type=\"sha256\">{}</checksum>\
         <location href=\"{primary_href}\"/><size>{}</size></data>\n{extra}</repomd>\n",
        sha256(PRIMARY),
        PRIMARY.len()
    )
}

/// `run` with the binary's data segment (heap) limited to `bytes`
/// (`RLIMIT_DATA`): a run that tries to hold more aborts.
fn with_data_limit(run: Run, bytes: u64) -> Run {
    run.command_mut(|cmd| {
        // SAFETY: setrlimit is async-signal-safe and only touches the child.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
}

/// Class 1: internal entity expansion. A 130 KB repomd.xml defining one
/// 100 KB entity and using it 10,000 times (1 GB expanded) must cost memory
/// linear in its size: a warning for that file, exit 0, under a 1 GiB data
/// limit (the unbounded parse needs about 6 GB, so it aborts under the limit).
#[test]
fn xml_entity_expansion_is_bounded() {
    let tree = Tree::new();
    let entity = "x".repeat(100_000);
    let uses = "&big;".repeat(10_000);
    let bomb = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE repomd [<!ENTITY big \"{entity}\">]>\n\
         <repomd xmlns=\"http://linux.duke.edu/metadata/repo\">\
         <data type=\"primary\"><location href=\"repodata/p.xml\"/><checksum>{uses}</checksum></data>\
         </repomd>\n"
    );
    tree.write("root/rpm/bomb/repodata/repomd.xml", bomb.as_bytes());
    tree.write("root/rpm/bomb/repodata/p.xml", PRIMARY);
    // A small entity used a few times stays a normal parse (as the fixtures' odd-xml).
    let fine = repomd("&rd;/p.xml", "").replacen(
        "<repomd",
        "<!DOCTYPE repomd [<!ENTITY rd \"repodata\">]>\n<repomd",
        1,
    );
    tree.write("root/rpm/fine/repodata/repomd.xml", fine.as_bytes());
    tree.write("root/rpm/fine/repodata/p.xml", PRIMARY);

    let run = with_data_limit(catalog_run(&tree.root()), 1 << 30);
    let (catalog, _) = parse_success(run.success().run());
    let repos = repositories(&catalog);
    let bomb = repos
        .iter()
        .find(|r| r["base_path"] == "rpm/bomb")
        .expect("bomb entry");
    assert_eq!(bomb["status"], "broken");
    assert!(
        has_warning(
            &catalog,
            "rpm",
            "rpm/bomb/repodata/repomd.xml",
            "failed to parse repomd.xml: "
        ),
        "{:?}",
        warnings(&catalog)
    );
    let fine = repos
        .iter()
        .find(|r| r["base_path"] == "rpm/fine")
        .expect("fine entry");
    assert_eq!(fine["status"], "ok", "{fine}");
    assert_eq!(fine["primary_path"], "rpm/fine/repodata/p.xml");
}

/// Class 2: paths read from metadata (repomd.xml hrefs, Release checksum
/// lines) that are absolute or climb out of the repository's base are
/// warnings naming them, and the files are never opened or hashed.
#[test]
fn metadata_paths_never_leave_the_repository() {
    let tree = Tree::new();
    let secret = b"secret of the host\n";
    let secret_file = tree.write("outside/secret.xml", secret);
    let secret_pkgs = tree.write("outside/binary-amd64/Packages", secret);
    let abs = secret_file.display().to_string();
    // RPM: absolute href, climbing href (base is root/rpm/r: 3 levels to the temp dir).
    let md = repomd(
        &abs,
        "<data type=\"other\"><location href=\"../../../outside/secret.xml\"/></data>\n\
         <data type=\"filelists\"><location href=\"repodata/../../../../outside/secret.xml\"/></data>\n\
         <data type=\"group\"><location href=\"/etc/passwd\"/></data>\n",
    );
    tree.write("root/rpm/r/repodata/repomd.xml", md.as_bytes());
    // APT: absolute and climbing index paths (suite dir is root/debian/dists/s).
    let release = format!(
        "Suite: s\nSHA256:\n 00 1 {}\n 00 1 ../../../../outside/binary-amd64/Packages\n 00 1 main/binary-amd64/Packages\n",
        secret_pkgs.display()
    );
    tree.write("root/debian/dists/s/Release", release.as_bytes());
    tree.write("root/debian/dists/s/main/binary-amd64/Packages", b"ok\n");

    let (catalog, text) = run_catalog(&tree.root());
    assert!(
        !text.contains(&sha256(secret)),
        "a file outside the tree was hashed:\n{text}"
    );
    let passwd = fs::read("/etc/passwd").expect("/etc/passwd");
    assert!(!text.contains(&sha256(&passwd)), "/etc/passwd was hashed");
    let rpm = repositories(&catalog)
        .iter()
        .find(|r| r["type"] == "rpm")
        .expect("rpm entry");
    for item in rpm["metadata"].as_array().expect("metadata") {
        assert!(item.get("metadata_sha256").is_none(), "{item}");
        assert_eq!(item["status"], "missing", "{item}");
    }
    // The primary's is the reference's "missing" warning; the others say why.
    assert!(
        has_warning(
            &catalog,
            "rpm",
            &abs,
            "primary metadata file listed in repomd.xml is missing"
        ),
        "{:?}",
        warnings(&catalog)
    );
    for path in [
        "rpm/r/../../../outside/secret.xml",
        "rpm/r/repodata/../../../../outside/secret.xml",
        "/etc/passwd",
    ] {
        assert!(
            has_warning(&catalog, "rpm", path, "outside the repository; not opened"),
            "no warning naming {path}: {:?}",
            warnings(&catalog)
        );
    }
    let apt: Vec<&Value> = repositories(&catalog)
        .iter()
        .filter(|r| r["type"] == "apt")
        .collect();
    assert_eq!(apt.len(), 1, "{apt:?}");
    assert_eq!(
        apt[0]["metadata_path"],
        "debian/dists/s/main/binary-amd64/Packages"
    );
    for path in [
        secret_pkgs.display().to_string(),
        "../../../../outside/binary-amd64/Packages".to_owned(),
    ] {
        assert!(
            has_warning(&catalog, "apt", "debian/dists/s/Release", &path),
            "no warning naming {path}: {:?}",
            warnings(&catalog)
        );
    }
}

/// Class 3: symlinks are followed only while their target stays inside the
/// scan root: a link to `/`, links to directories holding repositories
/// outside, and file links (repomd.xml, InRelease, Packages, pkglist) to
/// files outside are not followed, each with a warning; links inside the
/// root (and loops) still work. A top-level link is a published prefix
/// (publish-snapshot makes `snapshots/<snap>/<prefix>` links into the ZFS
/// snapshot): its target is read, but what lies below it is held to that
/// target; a top-level link to `/` (a parent of the root) is refused.
#[test]
fn symlinks_out_of_the_scan_root_are_not_followed() {
    let tree = Tree::new();
    let secret = b"secret of the host\n";
    let secret_file = tree.write("outside/secret", secret);
    // Repositories outside the root, reached through directory links.
    let md = repomd("repodata/p.xml", "");
    tree.write("outside/rpmrepo/repodata/repomd.xml", md.as_bytes());
    tree.write("outside/rpmrepo/repodata/p.xml", PRIMARY);
    tree.write("outside/alt/x86_64/base/pkglist.classic", secret);
    tree.write(
        "outside/debian/dists/s/Release",
        b"SHA256:\n 00 1 main/binary-amd64/Packages\n",
    );
    tree.write("outside/debian/dists/s/main/binary-amd64/Packages", secret);
    // A published prefix (a top-level link), with a link inside it that
    // leaves it.
    tree.write(
        "published/debian/dists/s/Release",
        b"SHA256:\n 00 1 main/binary-amd64/Packages\n",
    );
    tree.write(
        "published/debian/dists/s/main/binary-amd64/Packages",
        b"published\n",
    );
    tree.link(
        "published/debian/dists/leak",
        &tree.path("outside/debian/dists/s"),
    );
    tree.link("root/pub-debian", &tree.path("published/debian"));
    tree.link("root/slash", Path::new("/"));
    tree.link("root/host/slash", Path::new("/"));
    tree.link("root/rpm/escape", &tree.path("outside/rpmrepo"));
    tree.link("root/alt/escape", &tree.path("outside/alt"));
    tree.link("root/deb2/dists", &tree.path("outside/debian/dists"));
    // File links to the outside.
    tree.write("root/rpm/filelink/repodata/p.xml", PRIMARY);
    tree.link("root/rpm/filelink/repodata/repomd.xml", &secret_file);
    tree.link("root/alt2/x86_64/base/pkglist.classic", &secret_file);
    tree.link("root/deb3/dists/s/InRelease", &secret_file);
    tree.write(
        "root/deb4/dists/s/Release",
        b"SHA256:\n 00 1 main/binary-amd64/Packages\n",
    );
    tree.link("root/deb4/dists/s/main/binary-amd64/Packages", &secret_file);
    // Inside links keep working, loops end.
    tree.write("root/rpm/real/repodata/repomd.xml", md.as_bytes());
    tree.write("root/rpm/real/repodata/p.xml", PRIMARY);
    tree.link("root/rpm/real/loop", Path::new(".."));
    for repo in ["zz", "zz2"] {
        tree.write(
            &format!("root/{repo}/repo/repodata/repomd.xml"),
            md.as_bytes(),
        );
        tree.write(&format!("root/{repo}/repo/repodata/p.xml"), PRIMARY);
    }
    tree.link("root/a-rel", Path::new("zz2"));
    let abs_inside = tree.root().canonicalize().expect("canonical").join("zz");
    tree.link("root/abs-inside", &abs_inside);

    let (catalog, text) = run_catalog(&tree.root());
    assert!(
        !text.contains(&sha256(secret)),
        "a file outside the tree was hashed:\n{text}"
    );
    let bases: Vec<&str> = repositories(&catalog)
        .iter()
        .map(|r| r["base_path"].as_str().expect("base_path"))
        .collect();
    assert!(
        bases.iter().all(|b| !b.starts_with("host/")
            && !b.contains("escape")
            && !b.starts_with("deb2")
            && !b.starts_with("alt2")),
        "repositories outside the root: {bases:?}"
    );
    // A relative link inside the root, and an absolute link that stays
    // inside, still count (first visit wins, so the link's path is used).
    for base in ["a-rel/repo", "abs-inside/repo", "rpm/real"] {
        assert!(bases.contains(&base), "{base} missing: {bases:?}");
    }
    let published: Vec<&str> = repositories(&catalog)
        .iter()
        .filter(|r| r["type"] == "apt")
        .map(|r| r["metadata_path"].as_str().expect("metadata_path"))
        .collect();
    assert_eq!(
        published,
        ["pub-debian/dists/s/main/binary-amd64/Packages"],
        "only the published prefix's own index"
    );
    let outside = "leads out of the scan root";
    for (format, path) in [
        ("rpm", "host/slash"),
        ("rpm", "rpm/escape"),
        ("apt-rpm", "alt/escape"),
        ("rpm", "slash"),
        ("apt-rpm", "slash"),
        ("apt", "pub-debian/dists/leak"),
        ("rpm", "pub-debian/dists/leak"),
        ("apt", "deb2/dists"),
        ("rpm", "rpm/filelink/repodata/repomd.xml"),
        ("apt-rpm", "alt2/x86_64/base/pkglist.classic"),
        ("apt", "deb3/dists/s/InRelease"),
        ("apt", "deb4/dists/s/main/binary-amd64/Packages"),
    ] {
        assert!(
            has_warning(&catalog, format, path, outside),
            "no {format} warning for {path}: {:?}",
            warnings(&catalog)
        );
    }
}

/// Class 4: unreadable directories are catalog warnings, not silent gaps.
/// Tests run as root, whom `chmod 000` does not stop, so the binary runs as
/// the unprivileged user `nobody` (uid/gid 65534, set by the test process
/// before exec), from a copy it can reach; as another user it runs as is.
#[test]
fn unreadable_directories_become_warnings() {
    let tree = Tree::new();
    let md = repomd("repodata/p.xml", "");
    tree.write("root/rpm/locked/repo/repodata/repomd.xml", md.as_bytes());
    tree.write("root/rpm/locked/repo/repodata/p.xml", PRIMARY);
    tree.write("root/alt/locked/x86_64/base/pkglist.classic", b"x");
    tree.write(
        "root/debian/dists/locked/Release",
        b"SHA256:\n 00 1 main/binary-amd64/Packages\n",
    );
    tree.write("root/debian/dists/locked/main/binary-amd64/Packages", b"x");
    tree.write(
        "root/ubuntu/dists/s/Release",
        b"SHA256:\n 00 1 main/binary-amd64/Packages\n",
    );
    for locked in [
        "root/rpm/locked",
        "root/alt/locked",
        "root/debian/dists/locked",
        "root/ubuntu/dists",
    ] {
        fs::set_permissions(tree.path(locked), fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let run = catalog_run(&tree.root()).unprivileged(tree.dir.path());
    let (catalog, _) = parse_success(run.success().run());
    for (format, path) in [
        ("rpm", "rpm/locked"),
        ("rpm", "alt/locked"),
        ("apt-rpm", "alt/locked"),
        ("apt", "debian/dists/locked"),
        ("apt", "ubuntu/dists"),
    ] {
        assert!(
            has_warning(&catalog, format, path, "Permission denied"),
            "no {format} warning for {path}: {:?}",
            warnings(&catalog)
        );
    }
}

/// Class 5: a Release file with 100,000 index lines (each its own
/// component) is handled in linear time (it took 28 s, quadratic in the
/// number of (component, arch) groups); the bound is generous.
#[test]
fn a_release_with_100000_index_lines_is_linear() {
    let tree = Tree::new();
    let mut release = String::from("Suite: big\nSHA256:\n");
    for i in 0..100_000 {
        release.push_str(&format!(
            " 0123456789abcdef 100 c{i}/binary-amd64/Packages.xz\n"
        ));
    }
    release.push_str(" 00 3 main/binary-amd64/Packages\n");
    tree.write("root/debian/dists/big/Release", release.as_bytes());
    tree.write("root/debian/dists/big/main/binary-amd64/Packages", b"ok\n");
    let start = std::time::Instant::now();
    let (catalog, _) = run_catalog(&tree.root());
    let took = start.elapsed();
    assert_eq!(repositories(&catalog).len(), 1);
    assert!(
        took < std::time::Duration::from_secs(10),
        "took {took:?} for 100,000 index lines"
    );
}

/// Class 6: metadata read whole (Release, InRelease, repomd.xml) is capped
/// at 64 MiB. Sparse 4 GiB files, read under a 512 MiB data limit: each is a
/// warning naming the cap, the run exits 0, and a normal suite beside them
/// is still catalogued (the uncapped read aborted under the limit).
#[test]
fn metadata_files_over_64_mib_are_warnings_not_read_whole() {
    let tree = Tree::new();
    let big = |rel: &str, head: &[u8]| {
        let path = tree.write(rel, head);
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(4 << 30).expect("sparse 4 GiB");
    };
    big(
        "root/debian/dists/huge/InRelease",
        b"Suite: huge\nSHA256:\n",
    );
    big(
        "root/rpm/huge/repodata/repomd.xml",
        b"<?xml version=\"1.0\"?>\n<repomd>",
    );
    tree.write(
        "root/debian/dists/fine/Release",
        b"Suite: fine\nSHA256:\n 00 3 main/binary-amd64/Packages\n",
    );
    tree.write("root/debian/dists/fine/main/binary-amd64/Packages", b"ok\n");
    let (catalog, _) = parse_success(
        with_data_limit(catalog_run(&tree.root()), 512 << 20)
            .success()
            .run(),
    );
    for (format, path, what) in [
        ("apt", "debian/dists/huge/InRelease", "Release/InRelease"),
        ("rpm", "rpm/huge/repodata/repomd.xml", "repomd.xml"),
    ] {
        assert!(
            has_warning(
                &catalog,
                format,
                path,
                &format!("failed to parse {what}: larger than 67108864 bytes")
            ),
            "{path}: {:?}",
            warnings(&catalog)
        );
    }
    assert!(
        repositories(&catalog)
            .iter()
            .any(|r| r["id"].as_str().is_some_and(|id| id.contains("fine"))),
        "{:?}",
        repositories(&catalog)
    );
}
