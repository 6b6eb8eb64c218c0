#!/usr/bin/env bash
# Runs a command on a real cgroup-v2-only kernel: Debian's own kernel (linux-image-amd64) booted
# under qemu-system-x86_64 (software emulation; BERTH_VM_ACCEL=kvm to use KVM) with
# `cgroup_no_v1=all`, so /sys/fs/cgroup is cgroup2 with every controller, laid out as systemd does
# (processes in /init.scope, controllers enabled from the root).
#
#   scripts/cgroup2-vm/run.sh [--timeout SECONDS] [--share DIR]... [--] command [args...]
#
# The guest sees the host's root read-only over 9p under a tmpfs overlay, so it has node, the
# checkout and its node_modules without a copy, and its writes vanish with it, except in each
# `--share DIR`: a host folder the guest mounts read-write at the same path (reports, caches kept
# between runs). The command runs in
# the current directory as root, with CI, TERM and every BERTH_* variable of the caller; the script
# exits with its status (125 when the guest did not get to report one, 124 on timeout).
#
# Boot: a small initramfs (busybox-static, the 9p/virtio/overlay modules; built once per kernel into
# $BERTH_VM_CACHE, default /var/cache/berth/cgroup2-vm) mounts the share and hands over to
# `stage2`, which sets up cgroup2 and runs the command under `reaper` (a child subreaper). Other
# modules (veth, bridge, nf_tables, loop) load on demand from the host's /lib/modules.
#
# Settings: BERTH_VM_KERNEL (a /boot/vmlinuz-* path; default the newest one installed),
# BERTH_VM_CPUS (default: the host's cores), BERTH_VM_MEMORY (MiB, default 6144).
# Needs: qemu-system-x86, linux-image-amd64, cpio, busybox-static, gcc (scripts/install-deps.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[cgroup2-vm] %s\n' "$*" >&2; }

timeout_s=1800
shares=()
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s="$2"; shift 2 ;;
    --share) shares+=("$(cd "$2" && pwd)"); shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { log "usage: run.sh [--timeout SECONDS] [--share DIR]... [--] command [args...]"; exit 2; }

kernel="${BERTH_VM_KERNEL:-$(ls -1v /boot/vmlinuz-*-amd64 2>/dev/null | tail -n 1)}"
[ -n "$kernel" ] && [ -f "$kernel" ] || { log "no kernel: install linux-image-amd64"; exit 2; }
kver="${kernel#/boot/vmlinuz-}"
[ -d "/lib/modules/$kver" ] || { log "no /lib/modules/$kver for $kernel"; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { log "no qemu-system-x86_64: install qemu-system-x86"; exit 2; }

cache="${BERTH_VM_CACHE:-/var/cache/berth/cgroup2-vm}"
mkdir -p "$cache"

# The initramfs, rebuilt when the kernel, busybox or the first stage changes.
key="$(cat "$here/init" /bin/busybox "$kernel" | sha256sum | cut -c1-16)"
initrd="$cache/initrd-$kver-$key.cpio.gz"
if [ ! -f "$initrd" ]; then
  log "building the initramfs for $kver"
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,proc,sys,dev,lower,upper,newroot}
  cp /bin/busybox "$stage/bin/busybox"
  cp "$here/init" "$stage/init"
  : > "$stage/modules.order"
  for m in virtio_pci 9pnet_virtio 9p overlay; do
    modprobe --show-depends -S "$kver" "$m" | awk '$1 == "insmod" { print $2 }'
  done | awk '!seen[$0]++' | while read -r ko; do
    mkdir -p "$stage$(dirname "$ko")"
    cp "$ko" "$stage$ko"
    echo "$ko" >> "$stage/modules.order"
  done
  (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  rm -rf "$stage"
  trap - EXIT
fi

reaper="$cache/reaper-$(sha256sum "$here/reaper.c" | cut -c1-16)"
if [ ! -x "$reaper" ]; then
  gcc -O2 -static -o "$reaper.tmp" "$here/reaper.c"
  mv "$reaper.tmp" "$reaper"
fi

job="$(mktemp -d /tmp/berth-cgroup2-vm.XXXXXX)"
trap 'rm -rf "$job"' EXIT
cp "$here/stage2" "$reaper" "$job/"
mv "$job/$(basename "$reaper")" "$job/reaper"
# The command file (run by bash in the guest): the caller's directory and variables, then the command.
{
  printf 'cd %q\n' "$PWD"
  for v in CI TERM $(compgen -e | grep '^BERTH_' || true); do
    [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  printf 'export BERTH_CGROUP2_VM=1\n'
  printf '%q ' "$@"
  echo
} > "$job/command"

# Software emulation by default: these machines have a /dev/kvm that hangs the guest (no vmx).
# The shares: one 9p device each, listed for stage2 as `tag path` lines.
share_args=()
: > "$job/shares"
for i in "${!shares[@]}"; do
  share_args+=(-virtfs "local,path=${shares[$i]},mount_tag=share$i,security_model=none,multidevs=remap")
  printf 'share%s %s\n' "$i" "${shares[$i]}" >> "$job/shares"
done

accel="${BERTH_VM_ACCEL:-tcg}"
cpu=max
[ "$accel" = kvm ] && cpu=host
cpus="${BERTH_VM_CPUS:-$(nproc)}"
memory="${BERTH_VM_MEMORY:-6144}"
log "booting $kver ($accel, $cpus cpus, $memory MiB): $*"
start=$(date +%s)
status=0
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
  -machine q35,accel="$accel" -cpu "$cpu" -smp "$cpus" -m "$memory" \
  -nodefaults -no-user-config -display none -no-reboot \
  -chardev stdio,id=console,signal=off -serial chardev:console \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=3 cgroup_no_v1=all panic=-1 rdinit=/init" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$job",mount_tag=job,security_model=none,multidevs=remap \
  "${share_args[@]}" \
  </dev/null || status=$?
if [ "$status" -eq 124 ]; then
  log "timed out after ${timeout_s}s"
  exit 124
fi
if [ ! -s "$job/status" ]; then
  log "the guest reported no status (qemu exited with $status)"
  exit 125
fi
log "guest finished in $(( $(date +%s) - start ))s"
exit "$(cat "$job/status")"
