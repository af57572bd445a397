#!/bin/sh
# Prepares the build context of Dockerfile.scratch: an image FROM scratch that holds only svcd,
# svc and busybox (sh, sleep, ... for the units), with the units of contrib/docker/units/.
#
#   contrib/docker/build-scratch.sh CONTEXT [BIN_DIR]
#   podman build -t svc-scratch CONTEXT          # or docker build
#
# BIN_DIR holds static svcd and svc already built; without it they are built here (static:
# glibc's crt-static, so that they run with no libc in the image). BUSYBOX names a static
# busybox (default /bin/busybox, from Debian's busybox-static). UNITS names the units directory
# to copy (default contrib/docker/units).
set -eu
out=${1:?usage: build-scratch.sh CONTEXT [BIN_DIR]}
bin=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
busybox=${BUSYBOX:-/bin/busybox}
units=${UNITS:-$root/contrib/docker/units}

if [ -z "$bin" ]; then
  triple="$(uname -m)-unknown-linux-gnu"
  (cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$triple" --bin svcd --bin svc)
  bin=${CARGO_TARGET_DIR:-$root/target}/$triple/release
fi
for file in "$bin/svcd" "$bin/svc" "$busybox"; do
  [ -x "$file" ] || { echo "build-scratch.sh: $file is missing" >&2; exit 1; }
  # A dynamic binary would not start in an image without a libc. (ldd says "statically
  # linked" of a static PIE, "not a dynamic executable" of a static one.)
  if command -v ldd >/dev/null; then
    case "$(ldd "$file" 2>&1)" in
      *"statically linked"* | *"not a dynamic executable"*) ;;
      *) echo "build-scratch.sh: $file is not static (install busybox-static; build with crt-static)" >&2
         exit 1 ;;
    esac
  fi
done

rm -rf "$out/rootfs"
mkdir -p "$out/rootfs/bin" "$out/rootfs/etc/svc/units" "$out/rootfs/run" "$out/rootfs/tmp"
cp "$bin/svcd" "$bin/svc" "$busybox" "$out/rootfs/bin/"
[ "$(basename "$busybox")" = busybox ] || mv "$out/rootfs/bin/$(basename "$busybox")" "$out/rootfs/bin/busybox"
for applet in sh sleep echo cat kill ls ps date true false env; do
  ln -s busybox "$out/rootfs/bin/$applet"
done
cp "$units"/*.toml "$out/rootfs/etc/svc/units/"
chmod 1777 "$out/rootfs/tmp"
cp "$root/contrib/docker/Dockerfile.scratch" "$out/Dockerfile"
echo "context ready: $out (podman build -t svc-scratch $out)"
