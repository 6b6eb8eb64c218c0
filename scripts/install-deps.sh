#!/usr/bin/env bash
# Installs what berth's tests, examples and benchmarks need on a fresh Debian or Ubuntu machine,
# as root. Idempotent: packages already present are not touched, `apt-get update` runs only when
# something is missing, and `npm ci` runs only when node_modules is missing or older than
# package-lock.json (set BERTH_FORCE_NPM_INSTALL=1 to run it anyway).
#
# Installed from apt:
#   busybox-static   one static binary: the test and example image (test/helpers/busybox.ts)
#   docker-registry  the reference registry server (distribution), run on 127.0.0.1 for pull/push tests
#   debootstrap      builds the Debian minbase rootfs bench/pull.ts pulls (cached in /var/cache/berth-bench)
#   openssl          makes the token service's key and certificate in the registry auth tests
#   e2fsprogs        chattr/lsattr and mkfs.ext4 for filesystem tests
#   iproute2         `ip`, to check bridges, veths and addresses from the outside
#   nftables         `nft`, to check published ports' rules from the outside
#   util-linux       mount, umount, nsenter (test cleanup)
#   procps, kmod     ps, modprobe
#   gcc              compiles berth's native programs (src/runtime/monitor/*.c) from sources
#   gcc-aarch64-linux-gnu (on arm64: gcc-x86-64-linux-gnu)  the cross compiler `npm run build` (and
#                    so `npm pack`) builds them with for the other architecture: the package ships
#                    x86_64 and aarch64 (scripts/build-monitor.mjs)
#   qemu-user-static runs the other architecture's programs in test/unit/package.test.ts (called
#                    directly, as qemu-aarch64-static or qemu-x86_64-static; no binfmt handler needed)
#   qemu-system-x86, linux-image-amd64, cpio (on amd64)  the cgroup-v2-only guest the cgroup tests
#                    also run in (scripts/cgroup2-vm): Debian's kernel, booted under qemu by
#                    `npm run test:cgroup2`; the host goes on booting its own kernel
#                    (BERTH_SKIP_VM_DEPS=1 leaves them out: scripts/quickstart.sh needs none)
# Extra packages: BERTH_EXTRA_APT_PACKAGES="pkg1 pkg2".
#
# Container engines and runtimes (docker, podman, runc, crun) are NOT dependencies and are never
# installed here; the benchmarks compare against them only when they happen to be installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[install-deps] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run this as root (berth needs root for namespaces, mounts and cgroups)"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600 --no-install-recommends)

packages=(busybox-static docker-registry debootstrap openssl e2fsprogs iproute2 nftables util-linux procps kmod gcc
  qemu-user-static zstd bzip2 xz-utils)
case "$(dpkg --print-architecture)" in
  arm64) packages+=(gcc-x86-64-linux-gnu) ;;
  amd64)
    packages+=(gcc-aarch64-linux-gnu)
    [ "${BERTH_SKIP_VM_DEPS:-0}" = 1 ] || packages+=(qemu-system-x86 linux-image-amd64 cpio)
    ;;
  *) packages+=(gcc-aarch64-linux-gnu) ;;
esac
# shellcheck disable=SC2206
packages+=(${BERTH_EXTRA_APT_PACKAGES:-})

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done

# Node.js 20.19+: berth itself needs 20.18.1 (package.json "engines", undici's), its test tools 20.19
# (vite, under vitest: "^20.19.0 || >=22.12.0"). Install it from apt only when the distribution's own
# package is recent enough; otherwise say what to do.
node_ok() { command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; }
need_node=0
node_ok || need_node=1

apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    apt-get update -q -o DPkg::Lock::Timeout=600 </dev/null
    apt_updated=1
  fi
}

if [ "${#missing[@]}" -gt 0 ]; then
  apt_update
  log "apt-get install ${missing[*]}"
  apt-get install "${APT_OPTS[@]}" "${missing[@]}" </dev/null
else
  log "apt packages already installed: ${packages[*]}"
fi

if [ "$need_node" -eq 1 ]; then
  apt_update
  candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}')
  major=$(printf '%s' "${candidate#*:}" | cut -d. -f1)
  if [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 20 ]; then
    log "apt-get install nodejs ($candidate)"
    apt-get install "${APT_OPTS[@]}" nodejs npm </dev/null || apt-get install "${APT_OPTS[@]}" nodejs </dev/null
  fi
  if ! node_ok; then
    log "berth's tests need Node.js >= 20.19 and npm; this distribution offers '${candidate:-none}'."
    log "Install Node.js 20 or newer (e.g. from nodejs.org or NodeSource), then run this script again."
    exit 1
  fi
fi

# overlayfs is usually built in or auto-loaded; load it now so a missing module fails here, clearly.
if ! grep -qw overlay /proc/filesystems; then
  modprobe overlay 2>/dev/null || log "warning: overlayfs is not available (modprobe overlay failed)"
fi

# Node dependencies.
# npm writes node_modules/.package-lock.json after package-lock.json on every install, so a
# lockfile newer than it means node_modules is stale.
if [ "${BERTH_FORCE_NPM_INSTALL:-0}" = 1 ] || [ ! -f node_modules/.package-lock.json ] \
  || { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  if [ -f package-lock.json ]; then
    log "npm ci"
    # Never `npm install` here: it would rewrite package-lock.json. A lock that `npm ci` refuses
    # is a bug to fix in the repository (test/unit/package.test.ts checks it is complete).
    npm ci --no-audit --no-fund </dev/null
  else
    log "npm install (no package-lock.json)"
    npm install --no-audit --no-fund </dev/null
  fi
else
  log "node_modules is up to date"
fi
log "done"
