#!/usr/bin/env bash
# Provisions Cryo's CRIU lab on a Debian host: a Debian 13 (trixie) root with crun, the container
# tools and CRIU 4.2, entered through a persistent private mount namespace. Debian 12's own criu
# (3.17) fails `criu check` on recent kernels, hence the trixie root. See docs/lab.md.
#
#   sudo bash scripts/lab/provision.sh [all|ns|check|cleanup|purge]
#
#   all      (default) bootstrap + install + namespace + `criu check`; seconds when already done
#   ns       (re)create the lab namespace if it is missing (the test harness calls this); exits 3
#            when the lab is not provisioned or was provisioned by an older version of this script
#   check    print the tools' versions and run `criu check`
#   cleanup  stop lab containers, remove pod networks, the bridge and the namespace (keeps the root)
#   purge    cleanup, then delete the whole lab directory
#
# Environment: CRYO_LAB_DIR (default /var/lib/cryo-lab), CRYO_LAB_RUN_DIR (default /run/cryo-lab),
# CRYO_LAB_MIRROR (a Debian mirror URL; by default taken from this host's apt sources).

# Single-quoted formats below are expanded by another program on purpose.
# shellcheck disable=SC2016
set -euo pipefail

LAB_DIR=${CRYO_LAB_DIR:-/var/lib/cryo-lab}
ROOT=$LAB_DIR/root
LOG_DIR=$LAB_DIR/logs
STAMP=$LAB_DIR/provisioned
RUN_DIR=${CRYO_LAB_RUN_DIR:-/run/cryo-lab}
NS=$RUN_DIR/mnt
SUITE=trixie
# crun, conmon and catatonit run containers; libcriu2 because crun dlopen()s libcriu.so.2 (only
# a Recommends); iproute2 because CRIU runs `ip` for network namespaces; the rest is for the
# Podman/registry work that follows (podman, buildah, skopeo, docker-registry, checkpointctl);
# openjdk-21-jre-headless for the JVM the lab checkpoints (its image is made of the root's JRE).
PACKAGES=(criu libcriu2 crun conmon catatonit iproute2 iptables podman buildah skopeo
  docker-registry checkpointctl busybox-static ca-certificates openjdk-21-jre-headless)
# CRIU itself comes from Debian's next release (forky), pinned: trixie's criu 4.1.1 cannot dump
# any process holding an inet socket on kernel >= 6.16 ("sockets: Can't get 1:16 opt: Operation
# not supported": those kernels refuse SO_PASSCRED/SO_PASSSEC on inet sockets), fixed in 4.2.
# These are criu and the libraries its 4.2 package needs newer than trixie's; nothing else in
# the root depends on them.
FROM_NEXT=(criu libcriu2 libcompel1 libnet9 libnl-3-200)
NEXT_SUITE=forky
# Changing the package lists (or this number) makes the next run install again.
STAMP_CONTENT="format 2: ${PACKAGES[*]}; from $NEXT_SUITE: ${FROM_NEXT[*]}"
# On the host itself, for npm test: JUnit 5's console launcher for the Java hook client's unit
# tests (hook-sdk-java/test.sh), and a JDK (javac) when none is on PATH, for those and the hook
# conformance suite. Installed when missing, whether or not the lab is provisioned.
HOST_PACKAGES=(junit5)
HOST_JDK=default-jdk-headless

PIN_NAME=cryo-lab
SCRIPT_NAME=provision.sh
# shellcheck source=../lib/debian-root.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/debian-root.sh"

versions() {
  in_ns dpkg-query -W -f '${Package} ${Version}\n' "${PACKAGES[@]}"
  in_ns uname -r
}

# ---------------------------------------------------------------- cleanup
cleanup() {
  if ns_ok; then
    local id
    for id in $(in_ns crun list -q 2>/dev/null || true); do in_ns crun delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $(in_ns ip netns list 2>/dev/null | awk '$1 ~ /^cryo-/ { print $1 }'); do in_ns ip netns delete "$id" || true; done
  fi
  # Host ends of pod veths and the bridge the test harness made (names in test/src/harness/lab).
  local link
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^cryoh[0-9]+@/ { sub(/@.*/, "", $2); print $2 }'); do
    ip link delete "$link" 2>/dev/null || true
  done
  ip link delete "${CRYO_LAB_BRIDGE:-cryo-lab0}" 2>/dev/null || true
  drop_ns
  if mountpoint -q "$RUN_DIR"; then umount "$RUN_DIR"; fi
  rmdir "$RUN_DIR" 2>/dev/null || true
  # Empty cgroups of lab containers (the harness puts them under cryo-lab/).
  find /sys/fs/cgroup -depth -type d -path '*/cryo-lab*' -exec rmdir {} \; 2>/dev/null || true
  log "cleaned up (the root $ROOT stays; \`purge\` removes it)"
}

# ---------------------------------------------------------------- host packages
host_packages() {
  local missing=() p
  for p in "${HOST_PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  command -v javac >/dev/null || missing+=("$HOST_JDK")
  [ ${#missing[@]} -gt 0 ] || return 0
  logged host-apt-update apt-get update -q
  logged host-apt-install-tests env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  log "installed on the host: ${missing[*]}"
}

# ---------------------------------------------------------------- main
all() {
  host_packages
  if root_provisioned; then
    make_ns
    log "lab already provisioned at $LAB_DIR (rm $STAMP to force a reinstall)"
    return
  fi
  provision_root lab
}

cmd=${1:-all}
require_root "$cmd"
case "$cmd" in
  all) all ;;
  ns)
    if ! root_provisioned; then
      printf 'the CRIU lab at %s is missing or out of date: run `sudo bash %s`\n' "$LAB_DIR" "$0" >&2
      exit 3
    fi
    make_ns
    ;;
  check)
    ns_ok || make_ns
    versions
    criu_check
    ;;
  cleanup) cleanup ;;
  purge)
    cleanup
    unmount_under "$ROOT"
    rm -rf --one-file-system "$LAB_DIR"
    log "removed $LAB_DIR"
    ;;
  *) die "unknown command '$cmd' (all|ns|check|cleanup|purge)" ;;
esac
