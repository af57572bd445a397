//! Unit files: the field defects of the unit parser, one test each.

use super::tests::{errors, one_error};

#[test]
fn systemd_keys_suggest_their_svc_equivalent_before_the_closest_spelling() {
    // The edit distance alone said "did you mean `restart`?".
    let text = "ExecStart = \"/usr/bin/node server.js\"\n";
    let all = errors(text);
    assert!(
        all.iter()
            .any(|e| e
                == "1:1 ExecStart: unknown key `ExecStart` (a systemd key), did you mean `exec`?"),
        "{all:#?}"
    );
    for (key, ours) in [
        ("User", "`user`"),
        ("WorkingDirectory", "`workdir`"),
        ("Environment", "`env`"),
        ("EnvironmentFile", "`env_file`"),
        ("Restart", "`restart.policy`? (under [restart])"),
        ("RestartSec", "`restart.delay`? (under [restart])"),
        ("TimeoutStopSec", "`stop.timeout`? (under [stop])"),
    ] {
        let text = format!("exec = \"true\"\n{key} = \"x\"\n");
        assert_eq!(
            one_error(&text, &format!("did you mean {ours}")),
            format!("2:1 {key}")
        );
    }
    // A systemd section says so, rather than suggesting a key.
    let text = "exec = \"true\"\n[Service]\nExecStart = \"x\"\n";
    assert_eq!(one_error(text, "systemd section"), "2:2 Service");
    // Not a systemd key: the closest spelling, as before.
    let text = "exec = \"true\"\nuserr = \"x\"\n";
    assert_eq!(one_error(text, "did you mean `user`?"), "2:1 userr");
}
