#!/usr/bin/env bash
# Runs examples/quickstart.ts on this machine, as root and offline: installs what it needs
# (scripts/install-deps.sh), then builds a busybox image locally and runs a container from it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The quickstart needs neither the cgroup v2 guest's kernel nor qemu.
BERTH_SKIP_VM_DEPS=1 bash scripts/install-deps.sh
exec npx tsx examples/quickstart.ts "$@" </dev/null
