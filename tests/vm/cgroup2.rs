//! Units in cgroup v2 memory cgroups, in a real kernel: the VM's cgroup2 hierarchy gives the
//! memory controller, which the machines of the other tests may not (theirs is bound to v1).
//!
//! svcd runs in a cgroup of its own (`/deleg`, as systemd's `Delegate=yes` would give it), not
//! in the root: it must move itself into a leaf before its units' cgroups may have the memory
//! controller. The checks run in the VM's script, each failing it with `FAIL: what`.

use crate::vm::{Vm, vm_or_skip};

/// The script's helpers.
pub(crate) const HELPERS: &str = r#"
fail() { echo "FAIL: $*"; cat /tmp/svcd.log; exit 1; }
# Polls a condition, every 0.1 s, for at most $1 seconds.
wait_for() { end=$(($(date +%s) + $1)); shift; until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.1; done; }
S="/usr/local/bin/svc --socket /run/svc-test/svcd.sock --timeout 30s"
"#;

/// svcd started in `/deleg`, after [`HELPERS`].
pub(crate) const START: &str = r#"
mkdir /sys/fs/cgroup/deleg
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
sh -c 'echo $$ > /sys/fs/cgroup/deleg/cgroup.procs; exec /usr/local/bin/svcd --units /svc/units --state-dir /run/svc-test' >/tmp/svcd.log 2>&1 &
SVCD=$!
wait_for 20 test -S /run/svc-test/svcd.sock || fail "svcd's socket"
wait_for 20 sh -c 'ls -d /sys/fs/cgroup/deleg/svc.* >/dev/null 2>&1' || fail "no units' cgroup"
BASE=$(echo /sys/fs/cgroup/deleg/svc.*)
pid_of() { $S status "$1" --json | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n 1; }
"#;

/// A VM with tests/vm/leaker.c built statically into it as `/leaker`.
fn vm_with_leaker() -> Option<Vm> {
    crate::vm::vm_with_c_programs(&["leaker"])
}

#[test]
fn units_get_cgroup_v2_memory_cgroups_with_limits_and_lose_them_when_stopped() {
    let Some(mut vm) = vm_with_leaker() else {
        return;
    };
    // A double fork: `sleep 1001` is orphaned in a session of its own.
    vm.unit(
        "forker",
        "exec = [\"sh\", \"-c\", \"(setsid sleep 1001 &); exec sleep 1000\"]\n[memory]\nmax = \"40M\"\n",
    );
    // Holds 37 MiB of its 40M: past 90% (told), under the limit (not restarted).
    vm.unit(
        "told",
        r#"exec = ["sh", "-c", "head -c 1 \"$MEMORY_PRESSURE_WATCH\" > /tmp/told & exec /leaker grow 1 10 100 37 /tmp/told.ms"]
[memory]
max = "40M"
on_limit = ["notify", "restart"]
"#,
    );
    let boot = vm.run(&format!(
        r#"{HELPERS}{START}
$S wait forker told --for running || fail "units running"
grep -qx "0::/deleg/svcd" /proc/$SVCD/cgroup || fail "svcd not in its leaf: $(cat /proc/$SVCD/cgroup)"
grep -qw memory /sys/fs/cgroup/deleg/cgroup.subtree_control || fail "no +memory for svcd's cgroup's children"
grep -qw memory $BASE/cgroup.subtree_control || fail "no +memory for the units' cgroups"
MAIN=$(pid_of forker)
grep -qx "$MAIN" $BASE/forker/cgroup.procs || fail "main pid $MAIN not in $BASE/forker"
wait_for 10 sh -c "[ \$(wc -l < $BASE/forker/cgroup.procs) -ge 2 ]" || fail "the double fork's child not in the cgroup"
for p in $(pidof sleep); do tr '\0' ' ' < /proc/$p/cmdline | grep -q 1001 && ORPHAN=$p; done
grep -qx "$ORPHAN" $BASE/forker/cgroup.procs || fail "orphan $ORPHAN not in the unit's cgroup"
[ "$(cat $BASE/forker/memory.high)" = 41943040 ] || fail "memory.high $(cat $BASE/forker/memory.high)"
[ "$(cat $BASE/forker/memory.max)" = 58720256 ] || fail "memory.max $(cat $BASE/forker/memory.max)"
$S status forker --json | grep -q '"cgroup2"' || fail "JSON mode: $($S status forker --json)"
$S status forker | grep -q 'its cgroup v2' || fail "status mode: $($S status forker)"
$S status forker
wait_for 20 test -s /tmp/told || fail "the unit was not told through MEMORY_PRESSURE_WATCH"
$S status told
$S stop forker || fail "svc stop"
wait_for 10 test ! -d $BASE/forker || fail "$BASE/forker left: $(cat $BASE/forker/cgroup.procs)"
kill -0 "$ORPHAN" 2>/dev/null && fail "the orphan $ORPHAN outlived svc stop"
$S shutdown
wait_for 10 test ! -d $BASE || fail "$BASE left after svcd's shutdown"
"#
    ));
    boot.assert_ok();
    eprintln!("VM run: {:?}", boot.took);
}

#[test]
fn over_its_limit_svcd_restarts_a_unit_even_one_the_kernel_holds_at_memory_high_and_names_the_kernels_kills()
 {
    let Some(mut vm) = vm_with_leaker() else {
        return;
    };
    // 1 MiB every 20 ms (50 MB/s), past memory.max (40M) towards the kernel's limit (56M):
    // restarted by svcd, each run appending the time from its RSS passing 40M to svcd's
    // SIGTERM.
    vm.unit(
        "leak",
        r#"exec = ["/leaker", "grow", "1", "20", "40", "200", "/tmp/leak.ms"]
[memory]
max = "40M"
[restart]
policy = "always"
delay = "100ms"
multiplier = 1
burst = 100
"#,
    );
    // 200 MB at once (one populated mapping) over a 50M limit: faster than any svcd could
    // sample, but the kernel throttles it at memory.high (50M) in the very system call, so it
    // never reaches the kernel's limit (66M) and svcd restarts it there, gracefully: no kernel
    // OOM kill (as v1 would have at its hard limit).
    vm.unit(
        "burst",
        "exec = [\"/leaker\", \"burst\", \"200\"]\n[memory]\nmax = \"50M\"\n[restart]\npolicy = \"never\"\n",
    );
    // Holds 30M under its 100M; the test then lowers its cgroup's memory.max below that, and
    // the kernel's OOM killer kills it: the reason svcd gives is the kernel's.
    vm.unit(
        "hog",
        "exec = [\"/leaker\", \"grow\", \"5\", \"1\", \"100\", \"30\", \"/tmp/hog.ms\"]\n[memory]\nmax = \"100M\"\n[restart]\npolicy = \"never\"\n",
    );
    let boot = vm.run(&format!(
        r#"{HELPERS}{START}
$S wait hog --for running
wait_for 20 sh -c "[ \$(cat $BASE/hog/memory.current) -gt 31457280 ]" || fail "hog holds $(cat $BASE/hog/memory.current)"
echo 20M > $BASE/hog/memory.max
wait_for 20 sh -c "$S status hog --json | grep -q '\"oom_kill\"'" || fail "hog's reason: $($S status hog --json)"
$S status hog | grep -q 'killed by the kernel: out of memory' || fail "hog's reason: $($S status hog)"
$S status hog || true
wait_for 20 sh -c "$S status burst --json | grep -q failed" || fail "burst not failed: $($S status burst; cat $BASE/burst/memory.events)"
$S status burst --json | grep -q '"memory_limit"' || fail "burst's reason kind: $($S status burst --json)"
# Failed for good: its cgroup is gone.
wait_for 10 test ! -d $BASE/burst || fail "$BASE/burst left"
$S status burst || true
wait_for 25 sh -c "[ \$(cat /tmp/leak.ms 2>/dev/null | wc -l) -ge 4 ]" || {{ $S status leak; cat $BASE/leak/memory.events $BASE/leak/memory.current; fail "4 restarts of leak: $(cat /tmp/leak.ms)"; }}
echo "LEAK_MS=$(tr '\n' ' ' < /tmp/leak.ms)"
echo "LEAK_OOM_KILLS=$(sed -n 's/^oom_kill //p' $BASE/leak/memory.events)"
echo "LEAK_MAX_EVENTS=$(sed -n 's/^max //p' $BASE/leak/memory.events)"
$S status leak --json | grep -q '"memory_limit"' || fail "leak's reason: $($S status leak --json)"
$S status leak || true
"#
    ));
    boot.assert_ok();
    let ms = boot.value("LEAK_MS").unwrap_or_default();
    eprintln!(
        "VM run {:?}: crossing to svcd's SIGTERM (ms, under software emulation): {ms}; \
         leak's kernel OOM kills: {}, times at the kernel's limit: {}",
        boot.took,
        boot.value("LEAK_OOM_KILLS").unwrap_or("?"),
        boot.value("LEAK_MAX_EVENTS").unwrap_or("?")
    );
}

/// svcd started by hand beside other processes in one cgroup (a login session's, a service's
/// that was not delegated) moves none of them: its units are sampled, and the log says why.
#[test]
fn a_cgroup_v2_that_holds_processes_not_svcds_is_left_as_it_is_and_units_are_sampled() {
    let Some(mut vm) = vm_or_skip() else {
        return;
    };
    vm.unit(
        "worker",
        "exec = [\"sleep\", \"1000\"]\n[memory]\nmax = \"40M\"\n",
    );
    let boot = vm.run(&format!(
        r#"{HELPERS}
mkdir /sys/fs/cgroup/session
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
sh -c 'echo $$ > /sys/fs/cgroup/session/cgroup.procs; exec sleep 1000' &
OTHER=$!
wait_for 10 grep -qx "$OTHER" /sys/fs/cgroup/session/cgroup.procs || fail "the other process's cgroup"
sh -c 'echo $$ > /sys/fs/cgroup/session/cgroup.procs; exec /usr/local/bin/svcd --units /svc/units --state-dir /run/svc-test' >/tmp/svcd.log 2>&1 &
SVCD=$!
wait_for 20 test -S /run/svc-test/svcd.sock || fail "svcd's socket"
$S wait worker --for running || fail "worker running"
grep -qx "0::/session" /proc/$SVCD/cgroup || fail "svcd moved: $(cat /proc/$SVCD/cgroup)"
grep -qx "0::/session" /proc/$OTHER/cgroup || fail "the other process moved: $(cat /proc/$OTHER/cgroup)"
grep -qw memory /sys/fs/cgroup/session/cgroup.subtree_control && fail "+memory turned on in the session's cgroup"
ls -d /sys/fs/cgroup/session/svc.* 2>/dev/null && fail "units' cgroups made"
$S status worker | grep -q 'sampled' || fail "status mode: $($S status worker)"
grep -q "not svcd's" /tmp/svcd.log || fail "svcd did not say why"
$S shutdown
"#
    ));
    boot.assert_ok();
}
