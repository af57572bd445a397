#!/usr/bin/env bash
# svc beside its peers, on the same machine, each tool in turn: runit, s6 and supervisord.
#
#   bench/peers.sh [logs] [status] [pss] [thousand]     (none: all four)
#
# Installs nothing. On Debian, the peers and the timing tool come from:
#   apt-get install -y runit s6 supervisor hyperfine
# (runit's package only installs runsvdir, runsv and sv; nothing here touches /etc/service.)
# CI does not run this script. It uses the release binaries of this tree (built first; or those
# in SVC_BIN_DIR, to compare builds), a temporary directory (PEERS_DIR, default: one made by
# mktemp), and stops every process it started by its pid. LOG_TOOLS limits the log capture
# measure to some of `svcd supervisord s6`. Each measure runs ROUNDS times (default 3), each tool in turn in every
# round; the figure printed is the median of the rounds.
#
#   logs      one unit floods its stdout (lines of 100 bytes, LOG_MIB MiB, default 1024): payload
#             MB/s into the log file and the logger's CPU per GB, for svcd (stamped lines),
#             supervisord (unstamped: it has no stamps) and s6-log (`t`: TAI64N stamps) reading
#             the same pipe.
#   status    the whole `svc status chat` command against `sv status` and `s6-svstat` (hyperfine),
#             back to back and after an idle pause of PAUSE seconds (default 1); then the three
#             in turn, run after run (ALTERNATE runs each, default 2000).
#   pss       PSS (and RSS) at idle with 2 units of the whole supervision tree: svcd; runsvdir
#             and a runsv per unit; s6-svscan and an s6-supervise per unit; supervisord.
#   thousand  1,000 units from the supervisor's start until all 1,000 processes run: svcd
#             against s6-svscan with 1,000 service directories.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
LOG_MIB=${LOG_MIB:-1024}
PAUSE=${PAUSE:-1}
parts=${*:-logs status pss thousand}

for tool in runsvdir runsv sv s6-svscan s6-supervise s6-svstat s6-svscanctl s6-log supervisord \
  supervisorctl hyperfine python3; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: apt-get install -y runit s6 supervisor hyperfine" >&2
    exit 1
  }
done

# SVC_BIN_DIR: measure the svcd and svc found there (another build, to compare) instead.
if [ -n "${SVC_BIN_DIR:-}" ]; then
  bin=$SVC_BIN_DIR
else
  cargo build --release --bins --quiet
  triple=$(rustc -vV | sed -n 's/^host: //p')
  bin=$PWD/target/$triple/release
  [ -x "$bin/svcd" ] || bin=$PWD/target/release
fi
SVCD=$bin/svcd
SVC=$bin/svc
linkage=static
grep -q 'interpreter' < <(LC_ALL=C readelf -l "$SVCD" 2>/dev/null || true) && linkage=dynamic

base=${PEERS_DIR:-$(mktemp -d /tmp/svc-peers.XXXXXX)}
mkdir -p "$base"
# Pids this script started; each is stopped at exit, whatever happened.
started=()
cleanup() {
  for pid in "${started[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  [ -n "${PEERS_DIR:-}" ] || rm -rf "$base"
}
trap cleanup EXIT

now() { date +%s.%N; }
# Median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# CPU seconds (utime + stime) of a live process.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
# KiB of a field of /proc/PID/smaps_rollup (Pss, Rss), summed over the pids given.
rollup() {
  local field=$1 sum=0 pid kib
  shift
  for pid in "$@"; do
    kib=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/smaps_rollup")
    sum=$((sum + kib))
  done
  echo "$sum"
}
# Waits (at most 60 s) until the command succeeds.
until_ok() {
  local deadline=$((SECONDS + 60))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $*" >&2; exit 1; }
    sleep 0.01
  done
}
# The children of a pid.
children() { cat /proc/"$1"/task/*/children; }
stop_pid() {
  local pid=$1 deadline=$((SECONDS + 30))
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { kill -9 "$pid" 2>/dev/null || true; break; }
    sleep 0.01
  done
  wait "$pid" 2>/dev/null || true
}

echo "svc beside its peers: $(nproc) CPUs, $(uname -sr), svcd $linkage build, $ROUNDS rounds"
echo "runit $(dpkg-query -W -f '${Version}' runit 2>/dev/null), s6 $(dpkg-query -W -f '${Version}' s6 2>/dev/null), supervisor $(dpkg-query -W -f '${Version}' supervisor 2>/dev/null)"

# --- svcd and its peers, started with a directory of units --------------------------------

# svcd_start DIR: units in DIR/units; sets svcd_pid, socket.
svcd_start() {
  local dir=$1
  : >"$dir/svcd.toml"
  SVCD_LOG=warn "$SVCD" --units "$dir/units" --state-dir "$dir/state" --config "$dir/svcd.toml" \
    </dev/null >/dev/null 2>"$dir/svcd.err" &
  svcd_pid=$!
  started+=("$svcd_pid")
  socket=$dir/state/svcd.sock
  until_ok "$SVC" --socket "$socket" list
}
svcd_stop() {
  "$SVC" --socket "$socket" shutdown >/dev/null 2>&1 || true
  stop_pid "$svcd_pid"
}

# supervisord_start DIR PROGRAMS: a config with the [program:x] sections given; sets sup_pid.
supervisord_start() {
  local dir=$1 programs=$2
  cat >"$dir/supervisord.conf" <<EOF
[unix_http_server]
file=$dir/supervisor.sock
[supervisord]
logfile=$dir/supervisord.log
pidfile=$dir/supervisord.pid
childlogdir=$dir
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://$dir/supervisor.sock
$programs
EOF
  supervisord -c "$dir/supervisord.conf" </dev/null >/dev/null 2>&1 &
  sup_pid=$!
  started+=("$sup_pid")
  until_ok supervisorctl -c "$dir/supervisord.conf" pid
}
supervisord_stop() { stop_pid "$sup_pid"; }

# A service directory of runit and s6 alike: DIR/NAME/run, `exec`ing ARGV.
service_dir() {
  mkdir -p "$1"
  printf '#!/bin/sh\nexec %s\n' "$2" >"$1/run"
  chmod +x "$1/run"
}

runit_start() {
  runsvdir -P "$1" </dev/null >/dev/null 2>&1 &
  runit_pid=$!
  started+=("$runit_pid")
}
runit_stop() {
  sv force-stop "$1"/* >/dev/null 2>&1 || true
  # HUP: runsvdir tells each runsv to exit, then exits.
  kill -HUP "$runit_pid" 2>/dev/null || true
  stop_pid "$runit_pid"
}

s6_start() {
  s6-svscan -c 2000 "$1" </dev/null >/dev/null 2>&1 &
  s6_pid=$!
  started+=("$s6_pid")
}
s6_stop() {
  s6-svscanctl -t "$1" 2>/dev/null || true
  stop_pid "$s6_pid"
}

# --- (a) log capture of one flooding unit ------------------------------------------------

bytes=$((LOG_MIB * 1024 * 1024))
line=$(printf 'x%.0s' $(seq 99))
# The unit notes when its flood begins and ends: the rate is the same span for every tool,
# without the start-up of a control command. When `head` ends, all but a pipe's buffer (64 KiB)
# of the flood has been read by the logger.
flood() { echo "date +%s.%N >$1/begin; yes $line | head -c $bytes; date +%s.%N >$1/end"; }

# Sets `result` to "MB/s CPU-seconds-per-GB" from the unit's begin and end files in $1 and the
# logger's CPU seconds $2.
flood_result() {
  result=$(awk -v b="$bytes" -v t="$(echo "$(cat "$1/end") - $(cat "$1/begin")" | bc)" -v c="$2" \
    'BEGIN { printf "%.0f %.2f", b / 1e6 / t, c / (b / 1e9) }')
}

logs_svcd() {
  local dir=$base/logs-svcd c0 c1
  rm -rf "$dir" && mkdir -p "$dir/units"
  printf 'shell = true\nexec = "%s"\nenabled = false\n[restart]\npolicy = "never"\n[log]\nmax_size = "100M"\nkeep = 3\n' \
    "$(flood "$dir")" >"$dir/units/flood.toml"
  svcd_start "$dir"
  c0=$(cpu "$svcd_pid")
  "$SVC" --socket "$socket" start flood >/dev/null
  # Its exit is published once its pipes are drained: every line is in the files then.
  "$SVC" --socket "$socket" wait flood --for inactive >/dev/null
  c1=$(cpu "$svcd_pid")
  svcd_stop
  flood_result "$dir" "$(echo "$c1 - $c0" | bc)"
  rm -rf "$dir"
}

logs_supervisord() {
  local dir=$base/logs-supervisord c0 c1 deadline=$((SECONDS + 300))
  rm -rf "$dir" && mkdir -p "$dir"
  # supervisord expands %(name)s in its config: the flood's `date +%s` is written %%s.
  supervisord_start "$dir" "[program:flood]
command=sh -c \"$(flood "$dir" | sed 's/%/%%/g')\"
autostart=false
autorestart=false
startsecs=0
stdout_logfile=$dir/flood.log
stdout_logfile_maxbytes=100MB
stdout_logfile_backups=3"
  c0=$(cpu "$sup_pid")
  supervisorctl -c "$dir/supervisord.conf" start flood >/dev/null
  # Done when supervisord has reaped it (and drained its pipe): its log says so. Polling that
  # file costs supervisord nothing, as asking supervisorctl would.
  until grep -q "exited: flood" "$dir/supervisord.log"; do
    [ $SECONDS -lt $deadline ] || { echo "supervisord's flood did not end" >&2; exit 1; }
    sleep 0.01
  done
  c1=$(cpu "$sup_pid")
  supervisord_stop
  flood_result "$dir" "$(echo "$c1 - $c0" | bc)"
  rm -rf "$dir"
}

logs_s6() {
  local dir=$base/logs-s6 c
  rm -rf "$dir" && mkdir -p "$dir"
  # s6-log reading the pipe as under s6-supervise's log/run: TAI64N stamps (t), 100 MB files
  # (s100000000), 3 kept; its own CPU time from `times` in the shell that waited for it (the
  # second line: its children's user and system time).
  bash -c "{ $(flood "$dir"); } | { s6-log t n3 s100000000 '$dir/flood'; times >'$dir/times'; }"
  c=$(sed -n 2p "$dir/times" | awk '{ for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); s += p[1] * 60 + p[2] } print s }')
  flood_result "$dir" "$c"
  rm -rf "$dir"
}

if [[ " $parts " == *" logs "* ]]; then
  echo
  echo "(a) log capture, one unit writing $LOG_MIB MiB in lines of 100 bytes"
  declare -A rate cpugb
  for round in $(seq "$ROUNDS"); do
    for tool in ${LOG_TOOLS:-svcd supervisord s6}; do
      "logs_$tool"
      read -r r c <<<"$result"
      rate[$tool]+="$r "
      cpugb[$tool]+="$c "
      echo "  round $round, $tool: $r MB/s, $c CPU s/GB"
    done
  done
  for tool in ${LOG_TOOLS:-svcd supervisord s6}; do
    printf '  %-12s median %s MB/s of payload, %s CPU s per GB (rounds: %s)\n' "$tool" \
      "$(tr ' ' '\n' <<<"${rate[$tool]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${cpugb[$tool]}" | grep . | median)" "${rate[$tool]}"
  done
fi

# --- (b) the whole status command ---------------------------------------------------------

two_units() {
  local dir=$1
  mkdir -p "$dir/units" "$dir/runit" "$dir/s6"
  for unit in chat proxy; do
    printf 'exec = ["sleep", "100000"]\n' >"$dir/units/$unit.toml"
    service_dir "$dir/runit/$unit" "sleep 100000"
    service_dir "$dir/s6/$unit" "sleep 100000"
  done
}
two_programs="[program:chat]
command=sleep 100000
[program:proxy]
command=sleep 100000"

if [[ " $parts " == *" status "* ]]; then
  echo
  echo "(b) the whole status command of one unit (hyperfine medians; ms)"
  dir=$base/status
  rm -rf "$dir" && two_units "$dir"
  svcd_start "$dir"
  runit_start "$dir/runit"
  s6_start "$dir/s6"
  until_ok "$SVC" --socket "$socket" wait chat --for running --timeout 10s
  until_ok sv status "$dir/runit/chat"
  until_ok s6-svstat "$dir/s6/chat"
  declare -A hot cold
  for round in $(seq "$ROUNDS"); do
    for pause in 0 "$PAUSE"; do
      if [ "$pause" = 0 ]; then
        opts=(--warmup 20 --runs 300)
      else
        opts=(--runs 20 --prepare "sleep $pause")
      fi
      hyperfine -N --style none "${opts[@]}" --export-json "$dir/h.json" \
        -n svc "$SVC --socket $socket status chat" \
        -n sv "sv status $dir/runit/chat" \
        -n s6-svstat "s6-svstat $dir/s6/chat" >/dev/null 2>&1
      while read -r name ms; do
        if [ "$pause" = 0 ]; then hot[$name]+="$ms "; else cold[$name]+="$ms "; fi
      done < <(python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], "%.2f" % (r["median"] * 1000))' "$dir/h.json")
    done
    echo "  round $round: back to back, after ${PAUSE}s idle (all rounds so far):" \
      "svc ${hot[svc]}/ ${cold[svc]}; sv ${hot[sv]}/ ${cold[sv]}; s6-svstat ${hot[s6-svstat]}/ ${cold[s6-svstat]}"
  done
  for tool in svc sv s6-svstat; do
    printf '  %-10s back to back %s ms, after %ss idle %s ms\n' "$tool" \
      "$(tr ' ' '\n' <<<"${hot[$tool]}" | grep . | median)" "$PAUSE" \
      "$(tr ' ' '\n' <<<"${cold[$tool]}" | grep . | median)"
  done
  # hyperfine runs each command's runs in a block, so that the one measured last or first meets
  # a machine in another state, and its own caches warm for that binary. Here the three take
  # turns, run after run (spawned and waited for by the same loop): each median is the command
  # as a script that calls several tools meets it.
  echo "  in turn, ALTERNATE runs each (default 2000), medians:"
  python3 - "${ALTERNATE:-2000}" "$SVC --socket $socket status chat" "sv status $dir/runit/chat" \
    "s6-svstat $dir/s6/chat" <<'PY'
import os, shutil, sys, time
runs, commands = int(sys.argv[1]), [c.split() for c in sys.argv[2:]]
paths = [shutil.which(c[0]) for c in commands]
null = os.open(os.devnull, os.O_WRONLY)
times = [[] for _ in commands]
for round in range(runs + 20):
    for i, argv in enumerate(commands):
        start = time.perf_counter()
        pid = os.posix_spawn(paths[i], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
        os.waitpid(pid, 0)
        if round >= 20:
            times[i].append(time.perf_counter() - start)
for argv, t in zip(commands, times):
    t.sort()
    print("    %-10s median %.2f ms, p90 %.2f ms" % (os.path.basename(argv[0]), t[len(t) // 2] * 1e3, t[len(t) * 9 // 10] * 1e3))
PY
  svcd_stop
  runit_stop "$dir/runit"
  s6_stop "$dir/s6"
fi

# --- (c) PSS at idle, two units -----------------------------------------------------------

if [[ " $parts " == *" pss "* ]]; then
  echo
  echo "(c) PSS (RSS) at idle with 2 units, the whole supervision tree, KiB"
  declare -A pss rss
  for round in $(seq "$ROUNDS"); do
    for tool in svcd runit s6 supervisord; do
      dir=$base/pss-$tool
      rm -rf "$dir" && two_units "$dir"
      case $tool in
      svcd)
        svcd_start "$dir"
        "$SVC" --socket "$socket" wait chat proxy --for running --timeout 10s >/dev/null
        pids=("$svcd_pid")
        ;;
      runit)
        runit_start "$dir/runit"
        until_ok sv status "$dir/runit/chat" "$dir/runit/proxy"
        until [ "$(children "$runit_pid" | wc -w)" = 2 ]; do sleep 0.01; done
        pids=("$runit_pid" $(children "$runit_pid"))
        ;;
      s6)
        s6_start "$dir/s6"
        until_ok s6-svstat "$dir/s6/chat"
        until_ok s6-svstat "$dir/s6/proxy"
        until [ "$(children "$s6_pid" | wc -w)" = 2 ]; do sleep 0.01; done
        pids=("$s6_pid" $(children "$s6_pid"))
        ;;
      supervisord)
        supervisord_start "$dir" "$two_programs"
        pids=("$sup_pid")
        ;;
      esac
      # Settle: start-up's allocations and requests pass.
      sleep 2
      p=$(rollup Pss "${pids[@]}")
      r=$(rollup Rss "${pids[@]}")
      pss[$tool]+="$p "
      rss[$tool]+="$r "
      echo "  round $round, $tool (${#pids[@]} processes): PSS $p, RSS $r"
      case $tool in
      svcd) svcd_stop ;;
      runit) runit_stop "$dir/runit" ;;
      s6) s6_stop "$dir/s6" ;;
      supervisord) supervisord_stop ;;
      esac
    done
  done
  for tool in svcd runit s6 supervisord; do
    printf '  %-12s PSS %s KiB, RSS %s KiB\n' "$tool" \
      "$(tr ' ' '\n' <<<"${pss[$tool]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${rss[$tool]}" | grep . | median)"
  done
fi

# --- (d) 1,000 units up -------------------------------------------------------------------

# How many of the units' processes (`sleep 100001` for svcd, `sleep 100002` for s6) run.
running_sleeps() { pgrep -c -x -f "sleep 10000$1" || true; }

if [[ " $parts " == *" thousand "* ]]; then
  echo
  echo "(d) 1,000 units from the supervisor's start to 1,000 processes running, seconds"
  dir=$base/thousand
  rm -rf "$dir" && mkdir -p "$dir/units" "$dir/s6"
  for i in $(seq -w 0 999); do
    printf 'exec = ["sleep", "100001"]\n' >"$dir/units/u$i.toml"
    service_dir "$dir/s6/u$i" "sleep 100002"
  done
  declare -A up
  for round in $(seq "$ROUNDS"); do
    for tool in svcd s6; do
      t0=$(now)
      if [ $tool = svcd ]; then
        svcd_start "$dir"
        mark=1
      else
        s6_start "$dir/s6"
        mark=2
      fi
      deadline=$((SECONDS + 60))
      until [ "$(running_sleeps $mark)" -ge 1000 ]; do
        [ $SECONDS -lt $deadline ] || { echo "$tool: 1,000 units not up in 60 s" >&2; exit 1; }
        sleep 0.005
      done
      t1=$(now)
      s=$(printf "%.2f" "$(echo "$t1 - $t0" | bc)")
      up[$tool]+="$s "
      echo "  round $round, $tool: $s s"
      if [ $tool = svcd ]; then svcd_stop; else s6_stop "$dir/s6"; fi
      rm -rf "$dir/state"
    done
  done
  for tool in svcd s6; do
    printf '  %-6s median %s s\n' "$tool" "$(tr ' ' '\n' <<<"${up[$tool]}" | grep . | median)"
  done
fi
