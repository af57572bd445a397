//! cgroup v2: a unit told of its memory (`notify`) is also told when its own tasks stall on
//! memory, by the PSI trigger svcd arms on its cgroup's `memory.pressure` (systemd's
//! `MEMORY_PRESSURE_WATCH` contract on cgroup v2); a unit without `notify` gets no trigger.
//!
//! The trigger goes with the run, comes back with the next, and with an adopted unit (`svc
//! upgrade`). The stall is the kernel's: the script lowers each unit's `memory.high` below what it holds
//! while it keeps allocating, and the kernel throttles it there (the throttling counts as a
//! memory stall). Both units' `memory.max` is far above, so the 90% crossing never tells them:
//! what reaches the FIFO is the trigger's alone.

use crate::cgroup2::{HELPERS, START};

#[test]
fn a_unit_with_notify_is_told_of_the_stalls_in_its_own_cgroup_and_one_without_gets_no_trigger() {
    let Some(mut vm) = crate::vm::vm_with_c_programs(&["leaker"]) else {
        return;
    };
    // 1 MiB every 100 ms towards 90M, far under its 100M (90%: 90M, never reached while
    // throttled); every byte of its FIFO is counted in /tmp/told.bytes.
    vm.unit(
        "told",
        r#"exec = ["sh", "-c", "cat \"$MEMORY_PRESSURE_WATCH\" > /tmp/told.bytes & exec /leaker grow 1 100 1000 90 /tmp/told.ms"]
[memory]
max = "100M"
on_limit = ["notify"]
"#,
    );
    vm.unit(
        "plain",
        "exec = [\"/leaker\", \"grow\", \"1\", \"100\", \"1000\", \"90\", \"/tmp/plain.ms\"]\n\
         [memory]\nmax = \"100M\"\n",
    );
    // Told of host pressure, no limit: a trigger too, and nothing to sample.
    vm.unit(
        "idler",
        "exec = [\"sleep\", \"1000\"]\n[memory]\non_pressure = [\"notify\"]\n",
    );
    let boot = vm.run(&format!(
        r#"{HELPERS}
export SVCD_LOG=debug
{START}
# The triggers svcd holds: its descriptors of units' memory.pressure files.
triggers() {{ for f in /proc/$SVCD/fd/*; do readlink "$f"; done 2>/dev/null | grep memory.pressure; }}
armed() {{ triggers | grep -q "/$1/memory.pressure"; }}
disarmed() {{ ! armed "$1"; }}
$S wait told plain idler --for running || fail "units running"
wait_for 10 armed told || fail "no trigger for told: $(triggers)"
wait_for 10 armed idler || fail "no trigger for idler (on_pressure notify): $(triggers)"
armed plain && fail "a trigger for plain, which has no notify: $(triggers)"
for u in told plain; do
  wait_for 20 sh -c "[ \$(cat $BASE/$u/memory.current) -gt 20971520 ]" || fail "$u holds $(cat $BASE/$u/memory.current)"
  echo 16M > $BASE/$u/memory.high
done
wait_for 20 sh -c "$S status told --json | grep -q '\"pressure_told\"'" || {{ cat $BASE/told/memory.pressure; fail "told not told: $($S status told --json)"; }}
wait_for 10 test -s /tmp/told.bytes || fail "nothing in told's FIFO"
$S status told | grep -q 'Told: of memory pressure in its cgroup at' || fail "status: $($S status told)"
$S status told | grep -q 'Told: of its memory' && fail "the 90% crossing told it: $($S status told)"
grep -q 'memory pressure in its cgroup' /tmp/svcd.log || fail "svcd's log does not say so"
grep 'some avg10=' $BASE/plain/memory.pressure | grep -q 'avg10=0.00 ' && echo "note: plain shows no stall yet"
$S status plain --json | grep -q 'pressure_told' && fail "plain told: $($S status plain --json)"
$S status told
echo "TOLD_BYTES=$(wc -c < /tmp/told.bytes)"
echo "PLAIN_PRESSURE=$(head -n 1 $BASE/plain/memory.pressure)"
# The trigger goes with the run, and comes back with the next.
$S stop told plain || fail "svc stop"
wait_for 10 disarmed told || fail "told's trigger outlived its stop: $(triggers)"
wait_for 10 test ! -d $BASE/told || fail "$BASE/told left"
wait_for 10 test ! -d $BASE/plain || fail "$BASE/plain left"
# Idle: a unit with a trigger and no limit; svcd should not wake (a measurement: the second
# is for the last sample's timer, due once more after the stop).
switches() {{ sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' /proc/$SVCD/status; }}
sleep 1.5
A=$(switches)
sleep 3
echo "IDLE_SWITCHES=$(($(switches) - A))"
grep -E 'PSI|pressure in its cgroup' /tmp/svcd.log
$S start told || fail "svc start told"
wait_for 10 armed told || fail "told's trigger not armed again: $(triggers)"
# svcd re-executed in place: the unit is adopted, and its trigger armed again as its cgroup is
# taken back (the last svcd's went with its descriptors at the exec).
arms() {{ grep -c "PSI trigger armed on .*/told/memory.pressure" /tmp/svcd.log; }}
[ "$(arms)" = 2 ] || fail "told's trigger armed $(arms) times before the upgrade"
$S upgrade || fail "svc upgrade"
wait_for 10 sh -c "[ \$(grep -c 'PSI trigger armed on .*/told/memory.pressure' /tmp/svcd.log) = 3 ]" || fail "told's trigger not armed after the upgrade: $(arms) times"
wait_for 10 armed told || fail "no trigger for told after the upgrade: $(triggers)"
$S shutdown
"#
    ));
    boot.assert_ok();
    eprintln!(
        "VM run {:?}: bytes told {}, plain's pressure {}; svcd's voluntary context switches \
         over 3 idle seconds with a trigger armed: {}",
        boot.took,
        boot.value("TOLD_BYTES").unwrap_or("?"),
        boot.value("PLAIN_PRESSURE").unwrap_or("?"),
        boot.value("IDLE_SWITCHES").unwrap_or("?"),
    );
    // svcd's lines of the triggers and the telling.
    for line in boot
        .console
        .lines()
        .filter(|l| l.contains("PSI") || l.contains("its cgroup ("))
    {
        eprintln!("  {line}");
    }
}
