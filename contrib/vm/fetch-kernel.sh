#!/bin/sh
# Fetches the kernel that tests/vm boots under qemu: Debian's cloud kernel (CONFIG_MEMCG, PSI,
# swap, the 8250 serial console built in), unpacked once into the cache directory the tests
# look in. Needs apt-get and dpkg-deb (Debian or Ubuntu); any other bzImage will do through
# SVC_TEST_VM_KERNEL.
set -eu
cache="${XDG_CACHE_HOME:-$HOME/.cache}/svc-test-vm"
[ -f "$cache/vmlinuz" ] && exit 0
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
# The package lists may not be there yet on a fresh machine.
apt-get download linux-image-cloud-amd64 || { apt-get update -qq && apt-get download linux-image-cloud-amd64; }
# The metapackage depends on the versioned image, which holds the kernel.
image="$(dpkg-deb -f linux-image-cloud-amd64_*.deb Depends | sed 's/ (.*//; s/,.*//')"
apt-get download "$image"
dpkg-deb -x "$image"_*.deb x
cp x/boot/vmlinuz-* "$cache/vmlinuz.part"
mv "$cache/vmlinuz.part" "$cache/vmlinuz"
echo "kernel: $cache/vmlinuz ($image)"
