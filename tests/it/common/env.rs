//! The test environments and the one way to start the binary with a clean
//! environment ([`binary`]): [`Env`] (a stage environment: workdir, a plain
//! directory standing in for the dataset, the fakes) and [`Work`] (a bare
//! temp directory, for `config` and `pipeline`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Ran, Run};

/// The dataset name the fake zfs emulates.
pub const DATASET: &str = "tank/mirror";

/// What the fake kesl-control answers to the threat query in
/// [`Env::av_scan_finding_eicar`].
pub const EICAR_ANSWER: &str =
    "EventType=ThreatDetected\nFileName=hello.deb\nDetectName=EICAR-Test-File";

/// A test environment in a fresh temp directory.
pub struct Env {
    _dir: tempfile::TempDir,
    /// The temp directory.
    pub root: PathBuf,
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

    /// [`Env::new`] with [`Env::default_config`] written as its config.
    pub fn with_default_config() -> Env {
        let env = Env::new();
        env.write_config(&env.default_config());
        env
    }

    /// [`Env::new`] with [`Env::av_config`]`(workers, batch_size,
    /// antivirus_extra)` written as its config.
    pub fn with_av_config(workers: u32, batch_size: u64, antivirus_extra: &str) -> Env {
        let env = Env::new();
        env.write_config(&env.av_config(workers, batch_size, antivirus_extra));
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

    /// The antivirus reports in `work/state/av_results/`, sorted (none
    /// when the directory does not exist).
    pub fn av_reports(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = fs::read_dir(self.state().join("av_results"))
            .map(|d| d.map(|e| e.expect("entry").path()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// `work/state/av_state/<name>`.
    pub fn av_state(&self, name: &str) -> PathBuf {
        self.state().join("av_state").join(name)
    }

    /// Asserts that `work/state/av_state/files_to_scan.txt` holds exactly
    /// the bytes `expected` (compared as text first, for a readable
    /// failure); returns them.
    #[track_caller]
    pub fn assert_scan_list(&self, expected: &[u8]) -> Vec<u8> {
        let list = fs::read(self.av_state("files_to_scan.txt")).expect("list");
        assert_eq!(
            String::from_utf8_lossy(&list),
            String::from_utf8_lossy(expected)
        );
        assert_eq!(list, expected);
        list
    }

    /// Writes [`Env::av_config`]`(2, 1, "")` as the config and returns the
    /// run of `av-scan` in which the fake kesl-control finds `hello.deb`
    /// (exit 72) and answers the threat query with [`EICAR_ANSWER`].
    pub fn av_scan_finding_eicar(&self) -> Run {
        self.write_config(&self.av_config(2, 1, ""));
        self.run()
            .env("FAKE_KESL_THREAT_MATCH", "hello.deb")
            .env("FAKE_KESL_QUERY_OUTPUT", EICAR_ANSWER)
            .arg("av-scan")
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
        let mut cmd = binary();
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

    /// The builder for one run of the binary in this environment
    /// ([`Run::new`]).
    pub fn run(&self) -> Run {
        Run::new(self)
    }

    /// Runs `--dry-run <stage>` in this environment, asserts it exits 0,
    /// and returns its output.
    pub fn dry_run(&self, stage: &str) -> Ran {
        self.run().args(["--dry-run", stage]).success().run()
    }

    /// Runs the binary in this environment with `args` and asserts exit
    /// code 2, a usage error.
    #[track_caller]
    pub fn assert_usage_error(&self, args: &[&str]) {
        self.run().args(args).code(2).run();
    }

    /// `docker/`: the fake docker's state (`FAKE_DOCKER_DIR`).
    pub fn docker_dir(&self) -> PathBuf {
        self.root.join("docker")
    }

    /// The start of a `sync` config: [`Env::default_config`] with the fake
    /// docker as `tools.docker`, then `syncer:` for the caller to append
    /// syncers to (`repos: repos.yaml` exists in `etc/`; the fake docker's
    /// state directory [`Env::docker_dir`] exists).
    pub fn sync_config_head(&self) -> String {
        self.write_file("etc/repos.yaml", "repos: []\n");
        fs::create_dir_all(self.docker_dir()).expect("create docker dir");
        format!(
            "{}  docker: {}\nsyncer:\n",
            self.default_config(),
            fakes_dir().join("docker").display()
        )
    }

    /// [`Env::run`] with the fake docker's state in [`Env::docker_dir`],
    /// for `sync`.
    pub fn sync_run(&self) -> Run {
        self.run().env("FAKE_DOCKER_DIR", self.docker_dir())
    }

    /// The stderr of `sync --syncer <syncer>` ([`Env::sync_run`]) as
    /// under GitLab CI (`CI=true`); the run must exit 0.
    pub fn ci_sync_stderr(&self, syncer: &str) -> String {
        self.sync_run()
            .env("CI", "true")
            .args(["sync", "--syncer", syncer])
            .success()
            .run()
            .stderr
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
        self.write_verify_report(name, "ok");
    }

    /// A workdir as the lifecycle leaves it: the published snapshots
    /// `20260101-000000` and `20260102-000000` (each with `debian/`), a
    /// failed verify of the newer one with `problems` problems in
    /// `debian/bookworm`, and `20260101-000000` promoted.
    pub fn write_published_workdir(&self, problems: u32) {
        let work = self.workdir();
        for snap in ["20260101-000000", "20260102-000000"] {
            fs::create_dir_all(work.join(format!("repo/snapshots/{snap}/debian")))
                .expect("create snapshot dir");
        }
        self.write_file(
            "work/metadata/snapshots/20260102-000000/verify.json",
            &format!(
                r#"{{"status": "failed", "totals": {{"problems": {problems}}}, "repositories": [{{"id": "debian/bookworm", "problems": {problems}}}]}}"#
            ),
        );
        self.write_file("work/state/promoted.txt", "20260101-000000\n");
    }

    /// Writes `work/metadata/snapshots/<name>/verify.json`, a whole
    /// `dist-mirror.verify.v1` report of no repositories with `status`
    /// (`ok` or `failed`).
    pub fn write_verify_report(&self, name: &str, status: &str) {
        let dir = self.workdir().join("metadata/snapshots").join(name);
        fs::create_dir_all(&dir).expect("create metadata dir");
        let report = serde_json::json!({
            "schema": "dist-mirror.verify.v1",
            "generated_at": "2026-01-01T00:00:00Z",
            "scan_root": format!("{DATASET}@{name}"),
            "deep": "none",
            "status": status,
            "signatures": "not_checked",
            "totals": {"repositories": 0, "repositories_failed": 0, "packages": 0,
                       "files_checked": 0, "bytes_hashed": 0, "problems": 0},
            "repositories": [],
        });
        fs::write(dir.join("verify.json"), report.to_string()).expect("write verify.json");
    }
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

    /// The builder for one run of the binary in the work directory
    /// ([`Run::in_work`]).
    pub fn run(&self) -> Run {
        Run::in_work(self)
    }
}

/// Prefixes of the variables a caller's environment must not leak into
/// the binary: its config, run mode and tool overrides (`MIRRORER_*`:
/// `MIRRORER_CONFIG`, `MIRRORER_SNAPSHOT`, `MIRRORER_TOOL_ZFS`, ...),
/// GitLab CI's (`CI`, `CI_JOB_URL`, `CI_SERVER_URL`, ..., `GITLAB_CI`,
/// `GITLAB_TOKEN`), the shard (`DIST_MIRROR_SHARD`,
/// `DIST_MIRROR_REPO_CATALOG_SHARD`), rsync's remote shell (`RSYNC_RSH`)
/// and the fakes' controls (`FAKE_*`).
pub const CLEARED_PREFIXES: &[&str] = &[
    "MIRRORER_",
    "CI",
    "GITLAB_",
    "DIST_MIRROR_",
    "RSYNC_",
    "FAKE_",
];

/// Removes from `cmd` every variable of the test runner's environment
/// named by [`CLEARED_PREFIXES`]. The one place that decides it: every way
/// of starting the binary here goes through it.
pub fn clear_environment(cmd: &mut std::process::Command) {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if CLEARED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(&key);
        }
    }
}

/// The path of the binary under test (`CARGO_BIN_EXE_mirrorer`).
pub fn binary_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mirrorer"))
}

/// The binary with a clean environment ([`clear_environment`]), started in
/// the repository root.
pub fn binary() -> std::process::Command {
    let mut cmd = std::process::Command::new(binary_path());
    clear_environment(&mut cmd);
    cmd.current_dir(repo_root());
    cmd
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of the reusable fake programs (`tests/fakes/`).
pub fn fakes_dir() -> PathBuf {
    repo_root().join("tests/fakes")
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}
