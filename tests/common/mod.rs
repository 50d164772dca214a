//! The one integration-test harness (docs/architecture.md, practice 8): the real binary
//! run through `assert_cmd` with a clean environment, in a temp directory
//! with fakes of the programs that cannot run here.
//!
//! Two entry points share it:
//! - [`Env`]: a stage environment: a workdir, a plain directory standing in
//!   for the ZFS dataset, a config, the fake programs of `tests/fakes/`;
//! - [`Work`] and [`mirrorer`]: a bare temp directory and the binary, for
//!   commands that need no dataset (`config`, `pipeline`), plus GitLab's CI
//!   schema ([`schema_validator`], [`check_pipeline`]).
//!
//! Layout under [`Env::root`]:
//!
//! ```text
//! work/          mirror.workdir (state/, repo/, metadata/)
//! mirror/        mirror.zfs_mirror_dir, the "dataset" tank/mirror
//! replica/       where the ssh stand-in puts the replica's files
//!                (replica/<root>/work/repo/...)
//! tmp/           TMPDIR of the binary (scratch trees)
//! fake.log       argv of every fake call, one line each
//! config.yaml    written by Env::write_config
//! ```
//!
//! Use: `let env = Env::new(); env.write_config(&env.default_config());
//! env.cmd().arg("snapshot").assert().success();`

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The dataset name the fake zfs emulates.
pub const DATASET: &str = "tank/mirror";

/// A test environment in a fresh temp directory.
pub struct Env {
    _dir: tempfile::TempDir,
    /// The temp directory.
    pub root: PathBuf,
}

/// The directory of the reusable fake programs (`tests/fakes/`).
pub fn fakes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes")
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

impl Env {
    /// A new environment with the directories above and a small mirror
    /// tree (apt and dnf content) in `mirror/`.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        // Canonical: the binary's paths and the ssh remapping must agree.
        let root = dir.path().canonicalize().expect("canonical temp dir");
        for d in ["work", "mirror", "replica", "tmp"] {
            fs::create_dir_all(root.join(d)).expect("create dir");
        }
        // Nothing exists below replica/: publication must cope with a fresh
        // replica.
        let env = Env { _dir: dir, root };
        env.write_file(
            "mirror/apt/mirror/deb.debian.org/debian/dists/bookworm/Release",
            "Suite: stable\n",
        );
        env.write_file(
            "mirror/apt/mirror/deb.debian.org/debian/pool/main/h/hello.deb",
            "deb",
        );
        env.write_file(
            "mirror/dnf/repos/centos/9/BaseOS/x86_64/os/repodata/repomd.xml",
            "<repomd/>\n",
        );
        env
    }

    /// `work/`: mirror.workdir.
    pub fn workdir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// `work/state/`.
    pub fn state(&self) -> PathBuf {
        self.workdir().join("state")
    }

    /// `mirror/`: the plain directory standing in for the dataset.
    pub fn mount(&self) -> PathBuf {
        self.root.join("mirror")
    }

    /// Where the ssh stand-in writes the replica's copy of `path`.
    pub fn replica_path(&self, path: &Path) -> PathBuf {
        let rel = path.strip_prefix("/").unwrap_or(path);
        self.root.join("replica").join(rel)
    }

    /// `fake.log`.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("fake.log")
    }

    /// The lines of `fake.log` (empty if no fake ran); bytes that are not
    /// UTF-8 (paths of odd files) are read lossily.
    pub fn log(&self) -> Vec<String> {
        String::from_utf8_lossy(&fs::read(self.log_path()).unwrap_or_default())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines of `fake.log` made by `program` (`zfs`, `syncoid`, `ssh`).
    pub fn log_of(&self, program: &str) -> Vec<String> {
        let prefix = format!("{program} ");
        self.log()
            .into_iter()
            .filter(|l| l.starts_with(&prefix))
            .collect()
    }

    /// Writes `content` to `<root>/<rel>`, creating parents.
    pub fn write_file(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, content).expect("write");
        path
    }

    /// Writes an executable shell script `<root>/bin/<name>` and returns its path.
    pub fn write_executable(&self, name: &str, script: &str) -> PathBuf {
        let path = self.write_file(&format!("bin/{name}"), script);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// The default config: remote publication to `replica.example` as
    /// `mirror`, two repo.paths mappings (debian, centos), the fakes as
    /// tools (rsync is the real one).
    pub fn default_config(&self) -> String {
        format!(
            "log:\n  log_level: DEBUG\n\
             mirror:\n  workdir: {work}\n  syncer_dir: {root}/etc\n  zfs_mirror_dataset: {DATASET}\n  zfs_mirror_dir: {mount}\n\
             replication:\n  replica_host: replica.example\n  ssh_user: mirror\n  ssh_key: {root}/id_rsa\n  skip_remote: false\n\
             repo:\n  paths:\n    apt/mirror:\n      deb.debian.org/debian: debian\n    dnf/repos:\n      centos: centos\n\
             tools:\n  zfs: {fakes}/zfs\n  syncoid: {fakes}/syncoid\n  ssh: {fakes}/ssh\n",
            work = self.workdir().display(),
            root = self.root.display(),
            mount = self.mount().display(),
            fakes = fakes_dir().display(),
        )
    }

    /// [`Env::default_config`] for `av-scan`: `mirror.kesl_max_workers:
    /// workers`, `antivirus.batch_size: batch_size` plus the lines of
    /// `antivirus_extra` (each `  key: value\n`), and the fake
    /// `kesl-control` as `tools.kesl_control`.
    pub fn av_config(&self, workers: u32, batch_size: u64, antivirus_extra: &str) -> String {
        let mount_line = format!("  zfs_mirror_dir: {}\n", self.mount().display());
        self.default_config()
            .replacen(
                &mount_line,
                &format!("{mount_line}  kesl_max_workers: {workers}\n"),
                1,
            )
            .replacen(
                "tools:\n",
                &format!(
                    "antivirus:\n  batch_size: {batch_size}\n{antivirus_extra}tools:\n  kesl_control: {}/kesl-control\n",
                    fakes_dir().display()
                ),
                1,
            )
    }

    /// `work/state/av_state/<name>`.
    pub fn av_state(&self, name: &str) -> PathBuf {
        self.state().join("av_state").join(name)
    }

    /// Writes `config.yaml`.
    pub fn write_config(&self, text: &str) -> PathBuf {
        self.write_file("config.yaml", text)
    }

    /// The binary (`CARGO_BIN_EXE_mirrorer`, what `Command::cargo_bin`
    /// finds) with `--config <root>/config.yaml`, a clean environment for
    /// the fakes (FAKE_*), TMPDIR=`tmp/`, the temp root as working
    /// directory, and no CI variables or tool overrides inherited from the
    /// test runner.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mirrorer"));
        for var in CLEARED_VARIABLES {
            cmd.env_remove(var);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("MIRRORER_") || key.starts_with("CI") || key.starts_with("FAKE_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("FAKE_LOG", self.log_path())
            .env("FAKE_ZFS_DATASET", DATASET)
            .env("FAKE_ZFS_MOUNT", self.mount())
            .env("FAKE_SSH_REMAP_FROM", &self.root)
            .env("FAKE_SSH_REMAP_TO", self.replica_path(&self.root))
            .env("TMPDIR", self.root.join("tmp"))
            .current_dir(&self.root)
            .arg("--config")
            .arg(self.root.join("config.yaml"));
        cmd
    }

    /// [`Env::std_cmd`] wrapped for assertions (`assert_cmd`).
    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.std_cmd())
    }

    /// Creates the snapshot `name` the way the fake zfs does: a copy of the
    /// mount under `.zfs/snapshot/<name>`.
    pub fn make_snapshot(&self, name: &str) {
        let status = std::process::Command::new(fakes_dir().join("zfs"))
            .args(["snapshot", &format!("{DATASET}@{name}")])
            .env("FAKE_ZFS_DATASET", DATASET)
            .env("FAKE_ZFS_MOUNT", self.mount())
            .status()
            .expect("run fake zfs");
        assert!(status.success(), "fake zfs snapshot {name}");
        self.mark_verified(name);
    }

    /// Writes an ok `work/metadata/snapshots/<name>/verify.json`, as
    /// `mirrorer verify --snapshot <name>` does for a clean snapshot, so
    /// that publish-snapshot's verification gate lets it through.
    pub fn mark_verified(&self, name: &str) {
        let dir = self.workdir().join("metadata/snapshots").join(name);
        fs::create_dir_all(&dir).expect("create metadata dir");
        let report = serde_json::json!({
            "schema": "dist-mirror.verify.v1",
            "generated_at": "2026-01-01T00:00:00Z",
            "scan_root": format!("{DATASET}@{name}"),
            "deep": "none",
            "status": "ok",
            "signatures": "not_checked",
            "totals": {"repositories": 0, "repositories_failed": 0, "packages": 0,
                       "files_checked": 0, "bytes_hashed": 0, "problems": 0},
            "repositories": [],
        });
        fs::write(dir.join("verify.json"), report.to_string()).expect("write verify.json");
    }
}

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory, with its permission bits.
    Dir(u32),
    /// A regular file, with its permission bits and content.
    File(u32, String),
    /// A symlink and its target.
    Link(PathBuf),
}

/// Every entry under `dir` (not following symlinks), by path relative to
/// `dir`. Empty if `dir` does not exist.
pub fn tree(dir: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.expect("entry");
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .expect("below base")
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Link(fs::read_link(&path).expect("readlink")));
            } else if meta.is_dir() {
                out.insert(rel, Entry::Dir(mode));
                walk(base, &path, out);
            } else {
                let content = fs::read_to_string(&path).unwrap_or_else(|_| "<binary>".to_owned());
                out.insert(rel, Entry::File(mode, content));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The names of `.*.tmp` files anywhere under `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_keys()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name.starts_with('.') && name.ends_with(".tmp")
        })
        .collect()
}

/// Stderr of an assert_cmd output as text.
pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temp work directory that is removed at the end of the test.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `rel` inside the work directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `content` to `rel` (parents created) and returns its path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Writes an executable script to `rel` and returns its path.
    pub fn write_executable(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.write(rel, content);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// The real binary, started in the work directory with a clean environment.
    pub fn mirrorer(&self) -> assert_cmd::Command {
        let mut cmd = mirrorer();
        cmd.current_dir(self.dir.path());
        cmd
    }
}

/// Variables the binary reads that a caller's environment must not leak in.
pub const CLEARED_VARIABLES: &[&str] = &[
    "CI",
    "CI_JOB_URL",
    "GITLAB_CI",
    "MIRRORER_CONFIG",
    "MIRRORER_SYNCERS",
    "MIRRORER_SNAPSHOT",
    "MIRRORER_PUBLISH_ALL",
    "MIRRORER_CATALOG_REBUILD",
    "MIRRORER_SKIP_REMOTE",
    "MIRRORER_DRY_RUN",
    "DIST_MIRROR_SHARD",
    "DIST_MIRROR_REPO_CATALOG_SHARD",
];

/// The real binary with a clean environment, started in the repository root.
pub fn mirrorer() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("mirrorer").expect("binary");
    for var in CLEARED_VARIABLES {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("MIRRORER_TOOL_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(repo_root());
    cmd
}

/// Runs the binary with `--config <config>` and `args`, and returns its
/// output (status not checked).
pub fn run_with_config(config: &Path, args: &[&str]) -> std::process::Output {
    mirrorer()
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("run mirrorer")
}

/// stdout of a finished command as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a finished command as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Names of the entries of `dir`, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// GitLab's CI JSON schema (tests/schema/gitlab-ci.json), compiled.
pub fn schema_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/schema/gitlab-ci.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).expect("GitLab CI schema compiles")
}

/// A child pipeline that is schema-valid, every job's stage declared, every `needs` a job of the
/// same pipeline, every job with one script line. Returns the parsed doc.
pub fn check_pipeline(text: &str) -> Value {
    let doc: Value = serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"));
    let validator = schema_validator();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}\n{text}");
    let top = doc.as_object().unwrap();
    let stages: Vec<&str> = top["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "sync",
            "scan",
            "snapshot",
            "verify",
            "replicate",
            "publish",
            "cleanup"
        ]
    );
    let reserved = ["stages", "workflow", "default", "variables"];
    let jobs: BTreeSet<&str> = top
        .keys()
        .map(String::as_str)
        .filter(|k| !reserved.contains(k))
        .collect();
    assert!(!jobs.is_empty(), "GitLab refuses an empty child pipeline");
    for job in &jobs {
        let j = &top[*job];
        let stage = j["stage"].as_str().unwrap();
        assert!(stages.contains(&stage), "{job}: undeclared stage {stage}");
        for need in j["needs"].as_array().unwrap() {
            let need = need.as_str().unwrap();
            assert!(
                jobs.contains(need),
                "{job} needs {need}, not in the pipeline"
            );
            let need_stage = top[need]["stage"].as_str().unwrap();
            let pos = |s: &str| stages.iter().position(|x| *x == s).unwrap();
            assert!(
                pos(need_stage) <= pos(stage),
                "{job} needs the later job {need}"
            );
        }
        assert_eq!(j["script"].as_array().map(Vec::len), Some(1), "{job}");
    }
    assert_eq!(top["workflow"]["rules"][0]["when"], "always");
    assert_eq!(top["default"]["interruptible"], false);
    assert_eq!(top["variables"]["GIT_STRATEGY"], "none");
    assert_eq!(top["variables"]["MIRRORER_CONFIG"]["expand"], false);
    doc
}

/// `cmd` (a [`Env::std_cmd`] or any command) run inside a private mount
/// namespace (`unshare --mount`, root or CAP_SYS_ADMIN) after the shell
/// commands `setup` (e.g. a small tmpfs or a read-only bind mount); the
/// mounts vanish with the namespace. Same environment and working directory
/// as `cmd`. Panics with what is missing when `unshare` is not installed.
pub fn in_mount_namespace(cmd: &std::process::Command, setup: &str) -> std::process::Command {
    let unshare = mirrorer::process::find_program("unshare")
        .unwrap_or_else(|| panic!("this test needs unshare (Debian package util-linux) and root"));
    let mut out = std::process::Command::new(unshare);
    out.args(["--mount", "--propagation", "private", "--", "sh", "-ec"])
        .arg(format!("{setup}\nexec \"$@\""))
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => out.env(key, v),
            None => out.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        out.current_dir(dir);
    }
    out
}

/// Whether `pid` is a live process: it exists and is not a zombie (a child
/// of a killed process may be re-parented to an init that never reaps it).
pub fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pids of the live children of `pid` (from `/proc/*/stat`).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(pid) && process_alive(child) {
            out.push(child);
        }
    }
    out
}
