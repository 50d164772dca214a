//! `antivirus.engine`, `antivirus.clamav_command` and `antivirus.clamav_args`:
//! validation (exit 3, naming the key and its position) and `config check`.

use crate::common::{Env, assert_has};

#[test]
fn config_check_shows_the_engine() {
    let env = Env::with_av_config(3, 50, "");
    let out = env.run().args(["config", "check"]).success().run();
    let text = &out.stdout;
    assert_has(
        text,
        "antivirus:\n  fail_on_threats: false\n  batch_size: 50\n  engine: kesl\n  kesl_max_workers: 3\n",
    );

    env.write_config(&env.av_config(
        3,
        50,
        "  engine: ClamAV\n  clamav_command: clamscan\n  clamav_args: [\"-d\", \"/var/lib/clamav\"]\n",
    ));
    let out = env.run().args(["config", "check"]).success().run();
    let text = &out.stdout;
    assert_has(
        text,
        "  engine: clamav\n  clamav_command: clamscan\n  clamav_args: [\"-d\", \"/var/lib/clamav\"]\n",
    );
}

#[test]
fn bad_engine_values_are_config_errors() {
    let env = Env::with_av_config(
        2,
        10,
        "  engine: sophos\n  clamav_command: clamd\n  clamav_args: {a: b}\n",
    );
    let err = env
        .run()
        .args(["config", "check"])
        .code(3)
        .stderr_has("3 problems")
        .run()
        .stderr;
    assert!(
        err.contains(r#"setting=antivirus.engine line=22 column=11 error="must be one of kesl, clamav, found \"sophos\"""#),
        "{err}"
    );
    assert!(
        err.contains(r#"setting=antivirus.clamav_command line=23 column=19 error="must be one of clamdscan, clamscan, found \"clamd\"""#),
        "{err}"
    );
    assert!(
        err.contains(r#"setting=antivirus.clamav_args line=24 column=16 error="must be a list, found a mapping""#),
        "{err}"
    );
    // av-scan refuses to start on it, before any program runs.
    env.run().arg("av-scan").code(3).run();
    assert!(env.log().is_empty());
}
