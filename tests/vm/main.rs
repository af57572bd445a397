//! Tests in a real kernel under qemu: svcd as a machine's PID 1, and units in cgroup v2 memory
//! cgroups (which the machines that run the other tests may not give: their memory controller
//! may be bound to cgroup v1). A test binary of its own: each test boots a VM of 512 MiB, and
//! cargo runs test binaries one after the other, so the VMs do not compete with the `it`
//! binary's tests for the CPU. Without qemu or a kernel, the tests say SKIPPED (see [`vm`]).

// Some helpers serve only the tests of later areas.
#[allow(dead_code)]
mod cgroup2;
mod cgroup_pressure;
mod clone3;
mod vm;

use vm::{MARKER, UNITS, vm_or_skip};

/// svcd as PID 1 of a machine: it starts the units, `svc status` answers, and a clean
/// `svc shutdown` stops them and powers the machine off (PID 1 must never just exit: the
/// kernel panics then).
#[test]
fn svcd_as_a_machines_pid1_starts_units_answers_and_powers_off() {
    let Some(mut vm) = vm_or_skip() else { return };
    vm.unit("web", "exec = [\"sleep\", \"1000\"]\n");
    vm.unit(
        "probe",
        "type = \"oneshot\"\nexec = [\"sh\", \"/probe.sh\"]\n",
    );
    vm.file(
        "/probe.sh",
        format!(
            "exec >/dev/console 2>&1\n\
             /usr/local/bin/svc --socket /run/svc-test/svcd.sock --timeout 20s wait web --for running\n\
             /usr/local/bin/svc --socket /run/svc-test/svcd.sock status web\n\
             echo \"{MARKER} $?\"\n\
             /usr/local/bin/svc --socket /run/svc-test/svcd.sock shutdown\n"
        ),
        0o755,
    );
    let boot = vm.boot_init(&format!(
        "exec svcd --units {UNITS} --state-dir /run/svc-test\n"
    ));
    boot.assert_ok();
    assert!(boot.console.contains("State: running"), "{}", boot.console);
    // The kernel's threads are no process left to wait for: the shutdown ends at once, not
    // after its timeout and a SIGKILL to all.
    assert!(
        !boot.console.contains("shutdown timeout"),
        "svcd waited for the kernel's threads to exit:\n{}",
        boot.console
    );
    eprintln!("boot to power-off: {:?}", boot.took);
}

/// A script that fails fails its test: its exit status reaches the marker line (it was the
/// status of the `echo` before the marker, always 0, and no VM test could fail by its script).
#[test]
fn a_vm_scripts_failure_is_its_boots_status() {
    let Some(mut vm) = vm_or_skip() else { return };
    let boot = vm.run("echo before\nexit 3\n");
    assert_eq!(boot.status, Some(3), "{}", boot.console);
    boot.assert_powered_off();
}
