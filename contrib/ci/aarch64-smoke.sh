#!/usr/bin/env bash
# Builds svcd and svc for aarch64 (static, as `make static` does on an aarch64 host) and runs them
# under qemu-user: svcd on a temp units dir with one unit, `svc status` answers with the unit
# running, SIGTERM ends svcd with 0. Needs qemu-aarch64 (Debian: qemu-user-static) and the cross
# linker (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross); `.ci/run` installs them when missing.
#
# SMOKE_PROFILE=release (the default) builds what users get; a shorter build for a quick local
# check: SMOKE_PROFILE=dev.
set -euo pipefail
cd "$(dirname "$0")/../.."

triple=aarch64-unknown-linux-gnu
profile="${SMOKE_PROFILE:-release}"
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64) \
  || { echo "missing qemu-aarch64 (qemu-user-static)" >&2; exit 1; }
command -v aarch64-linux-gnu-gcc >/dev/null \
  || { echo "missing aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu)" >&2; exit 1; }
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$triple"; then
  rustup target add "$triple"
fi

start=$SECONDS
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --locked --profile "$profile" --bins --target "$triple"
echo "aarch64 smoke: $profile build took $((SECONDS - start)) s"
dir="target/$triple/$([ "$profile" = dev ] && echo debug || echo "$profile")"
svcd="$dir/svcd"
svc="$dir/svc"
# Static: no aarch64 loader or libc needed on the machine, qemu runs them as they are.
# ELF e_machine 183 is aarch64.
[ "$(od -An -tu2 -j18 -N2 "$svcd" | tr -d ' ')" = 183 ] || { echo "$svcd is not aarch64" >&2; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/units"
# The unit's own program is the host's: qemu-user runs only svcd, which execs sleep natively.
printf 'exec = ["sleep", "3600"]\n' > "$tmp/units/nap.toml"
socket="$tmp/svcd.sock"

"$qemu" "$svcd" --units "$tmp/units" --state-dir "$tmp" --socket "$socket" \
  > "$tmp/svcd.out" 2>&1 &
pid=$!
# Until svcd's socket exists svc fails at once: ask again until a deadline.
deadline=$((SECONDS + 120))
until "$qemu" "$svc" --socket "$socket" wait nap --for running --timeout 60s 2>"$tmp/wait.err"; do
  if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "aarch64 smoke: unit not running" >&2
    cat "$tmp/wait.err" "$tmp/svcd.out" >&2
    exit 1
  fi
  sleep 0.2
done
status=$("$qemu" "$svc" --socket "$socket" status nap)
echo "$status"
grep -q "running" <<<"$status" || { echo "aarch64 smoke: status does not say running" >&2; exit 1; }

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
if [ "$rc" -ne 0 ]; then
  echo "aarch64 smoke: svcd exited $rc on SIGTERM" >&2
  cat "$tmp/svcd.out" >&2
  exit 1
fi
echo "aarch64 smoke: ok (svcd and svc for $triple under $qemu, $((SECONDS - start)) s in all)"
