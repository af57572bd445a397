//! Regressions of templates, per-unit process settings and `stop.mode`.

use crate::util::*;

#[test]
fn adding_an_instance_to_a_template_restarts_no_other_instance() {
    let template = |instances: &str| {
        format!(
            "instances = [{instances}]\nexec = [\"sleep\", \"100%i\"]\nrestart.policy = \"never\"\n"
        )
    };
    let svcd = Dir::new().with("worker@", &template("\"1\"")).start();
    svcd.wait_for("worker@1", "running");
    let pid = svcd.status("worker@1")["pid"].clone();
    std::fs::write(
        svcd.dir.units().join("worker@.toml"),
        template("\"1\", \"2\""),
    )
    .expect("rewrite the template");
    svcd.svc_ok(&["reload"], 0);
    svcd.wait_for("worker@2", "running");
    assert_eq!(svcd.status("worker@1")["pid"], pid);
}
