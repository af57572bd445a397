//! Sockets held by svcd (`listen`): defects of readiness through a held socket.

use crate::ready::free_port;
use crate::sockets::FD3_SERVER;
use crate::util::*;

#[test]
fn a_ready_tcp_check_on_a_held_port_does_not_blame_svcd_for_holding_it() {
    let dir = Dir::new();
    let port = free_port();
    dir.unit(
        "web",
        &format!(
            "listen = [\"127.0.0.1:{port}\"]\n{FD3_SERVER}[ready]\ntcp = \"127.0.0.1:{port}\"\n"
        ),
    );
    let svcd = dir.start();
    svcd.wait_for("web", "ready");
    svcd.svc_ok(&["restart", "web"], 0);
    let log = svcd.svc_ok(&["logs", "web"], 0);
    let said = format!("{log}\n{}\n{}", svcd.stderr(), svcd.stdout());
    assert!(!said.contains("is in use by"), "{said}");
}

#[test]
fn a_ready_tcp_check_through_a_held_socket_waits_for_the_run_to_accept() {
    let dir = Dir::new();
    let port = free_port();
    let go = dir.path().join("go");
    let gated = FD3_SERVER.replacen(
        "import http.server, os, socket\n",
        &format!(
            "import http.server, os, socket, time\nwhile not os.path.exists('{}'):\n    time.sleep(0.02)\n",
            go.display()
        ),
        1,
    );
    assert_ne!(gated, FD3_SERVER);
    dir.unit(
        "web",
        &format!("listen = [\"127.0.0.1:{port}\"]\n{gated}[ready]\ntcp = \"127.0.0.1:{port}\"\n"),
    );
    let svcd = dir.start();
    // The kernel accepts the check's connection into the backlog: not a sign of readiness.
    let out = svcd.svc(&["wait", "web", "--for", "ready", "--timeout", "1s"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "ready before it accepted: {out:?}"
    );
    assert_eq!(svcd.status("web")["state"], "starting");
    std::fs::write(&go, "").expect("go");
    svcd.wait_for("web", "ready");
}
