#!/usr/bin/env bash
# Shared by scripts/lab/provision.sh and scripts/cluster/cluster.sh: a Debian root built with
# debootstrap from the host's own mirror, some packages pinned from Debian's next release, entered
# through a persistent private mount namespace (pivot_root) that shares the host's network and
# PID namespaces. Source it after setting:
#   ROOT LOG_DIR RUN_DIR NS SUITE NEXT_SUITE FROM_NEXT=() PACKAGES=() PIN_NAME SCRIPT_NAME STAMP STAMP_CONTENT
# Optional: NS_EXTRA_MOUNTS, a shell snippet run inside the new namespace before pivot_root with
# $R set to the root (for bind mounts of host paths at the same path).

# Single-quoted scripts and formats below are expanded by another shell or program on purpose.
# shellcheck disable=SC2016

T0=${T0:-$EPOCHREALTIME}
log() { printf '[%6.1fs] %s\n' "$(elapsed "$T0")" "$*"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
die() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }
# Runs a step with its output in a log file; on failure shows the log's tail and stops.
logged() {
  local name=$1 file=$LOG_DIR/$1.log start=$EPOCHREALTIME
  shift
  mkdir -p "$LOG_DIR"
  if ! "$@" >"$file" 2>&1; then
    printf '\n%s: step "%s" failed; last lines of %s:\n' "$SCRIPT_NAME" "$name" "$file" >&2
    tail -n 40 "$file" >&2
    exit 1
  fi
  log "$name: $(elapsed "$start")s (log: $file)"
}
# The environment every command in the namespace gets: the root's tools, nothing of the caller's.
NS_ENV=(env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
in_ns() { nsenter --mount="$NS" -- "${NS_ENV[@]}" "$@"; }
require_root() { [ "$(id -u)" = 0 ] || die "must run as root (sudo bash $0 ${1:-})"; }

# ---------------------------------------------------------------- the Debian mirror
# Prints "URI SUITE" for every enabled deb entry of the host's apt sources, one-line
# (sources.list, *.list) and deb822 (*.sources) formats alike.
apt_entries() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '{ sub(/#.*/, "") }
      $1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }   # skip [options]
        if (i + 1 <= NF) print $i, $(i + 1)
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'function flush(   n, m, a, b, u, s) {
          if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
            n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
            for (a = 1; a <= n; a++) for (b = 1; b <= m; b++) if (u[a] != "" && s[b] != "") print u[a], s[b]
          }
          types = uris = suites = enabled = last = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ { if (last == "uris") uris = uris " " $0; else if (last == "suites") suites = suites " " $0; next }
        { key = tolower($0); sub(/:.*/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val); last = key
          if (key == "types") types = val; else if (key == "uris") uris = val
          else if (key == "suites") suites = val; else if (key == "enabled") enabled = tolower(val) }
        END { flush() }' "$f"
  done
}

# Sets MIRROR (the archive the host's own release comes from) and SECURITY_MIRROR (may be empty).
find_mirrors() {
  local codename entries
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  entries=$(apt_entries | awk '$1 ~ /^(https?|file):/ { sub(/\/+$/, "", $1); print }')
  MIRROR=${CRYO_LAB_MIRROR:-$(awk -v s="$codename" '$2 == s { print $1; exit }' <<<"$entries")}
  SECURITY_MIRROR=$(awk -v s="$codename-security" '$2 == s { print $1; exit }' <<<"$entries")
  [ -n "$MIRROR" ] || die "no Debian mirror for '$codename' in /etc/apt/sources.list{,.d/*}; set CRYO_LAB_MIRROR"
}

# ---------------------------------------------------------------- the root
root_complete() { [ -x "$ROOT/usr/bin/apt-get" ] && [ ! -e "$ROOT/debootstrap" ]; }

# debootstrap mounts proc/sys in its target and may leave them behind when it fails.
unmount_under() {
  local m
  awk -v p="$1" 'index($5, p "/") == 1 || $5 == p { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  logged host-apt-update apt-get update -q
  logged host-apt-install env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
}

bootstrap_root() {
  if root_complete; then return; fi
  ensure_debootstrap
  drop_ns
  if [ -e "$ROOT" ]; then
    log "removing the incomplete root $ROOT"
    unmount_under "$ROOT"
    rm -rf --one-file-system "$ROOT"
  fi
  log "debootstrap $SUITE from $MIRROR"
  logged debootstrap debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"
}

configure_root() {
  # apt inside the root uses the same mirror, written the way Debian 13 writes its own sources.
  : >"$ROOT/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$MIRROR" "$SUITE" "$SUITE"
    if [ -n "$SECURITY_MIRROR" ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$SECURITY_MIRROR" "$SUITE"
    fi
  } >"$ROOT/etc/apt/sources.list.d/debian.sources"
  # The next release only for FROM_NEXT; its Release file's short validity is not checked
  # because a mirror snapshot lets it lapse, and apt would then refuse the whole update.
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\nCheck-Valid-Until: no\n' \
    "$MIRROR" "$NEXT_SUITE" >"$ROOT/etc/apt/sources.list.d/$NEXT_SUITE.sources"
  printf 'Package: *\nPin: release n=%s\nPin-Priority: 50\n\nPackage: %s\nPin: release n=%s\nPin-Priority: 990\n' \
    "$NEXT_SUITE" "${FROM_NEXT[*]}" "$NEXT_SUITE" >"$ROOT/etc/apt/preferences.d/$PIN_NAME-$NEXT_SUITE"
  # No service may start inside the root (docker-registry's and containerd's postinst would try).
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  # Mount points the namespace needs: /host (the host's root) and /.oldroot (pivot_root).
  mkdir -p "$ROOT/host" "$ROOT/.oldroot"
}

install_packages() {
  logged apt-update in_ns apt-get update -q
  logged apt-install in_ns env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-unsafe-io "${PACKAGES[@]}"
  in_ns apt-get clean
}

# The whole root, from nothing or from a stamp that no longer matches: bootstrap, configure, enter,
# install, check CRIU, stamp ($STAMP gets $STAMP_CONTENT). $1 names the root in the log.
provision_root() {
  mkdir -p "$LOG_DIR"
  find_mirrors
  bootstrap_root
  configure_root
  make_ns
  install_packages
  criu_check
  echo "$STAMP_CONTENT" >"$STAMP"
  du -sh --one-file-system "$ROOT" | awk '{ print "root size: " $1 }'
  log "$1 provisioned at $ROOT"
}
root_provisioned() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_CONTENT" ] && root_complete; }

# ---------------------------------------------------------------- the namespace
# The namespace is usable: pinned, shows the host at /host, and no cgroup2 with controllers.
ns_ok() {
  findmnt -n "$NS" >/dev/null 2>&1 &&
    nsenter --mount="$NS" -- /bin/sh -c \
      'test -d /host/proc && test -z "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)"' 2>/dev/null
}

drop_ns() {
  if findmnt -n "$NS" >/dev/null 2>&1; then umount "$NS"; fi
  rm -f "$NS"
}

# A private mount namespace whose root is $ROOT. pivot_root, not chroot: CRIU needs the root to
# be a mount point ("mnt: No parent found for mountpoint" under a plain chroot). The host's root
# stays visible at /host and the host's /tmp at /tmp. crun, runc and the kubelet refuse or
# misread hybrid cgroups when the host's cgroup2 at /sys/fs/cgroup/unified has controllers, so
# that mount is removed inside the namespace only: they see plain cgroup v1.
# The namespace lives as long as its file $NS stays bind-mounted; no process needs to stay in it.
make_ns() {
  if ns_ok; then return; fi
  # Two callers may ask at once: the second waits and then finds the namespace made.
  exec 9>"$RUN_DIR.lock"
  flock 9
  if ns_ok; then return; fi
  local start=$EPOCHREALTIME
  drop_ns
  mkdir -p "$RUN_DIR"
  # $RUN_DIR must be a private mount, or the nsfs bind of $NS would propagate into the namespace
  # itself (the kernel refuses such loops).
  if ! mountpoint -q "$RUN_DIR"; then mount --bind "$RUN_DIR" "$RUN_DIR"; fi
  mount --make-private "$RUN_DIR"
  touch "$NS"
  unshare --mount="$NS" --propagation private /bin/sh -ec '
    R=$1
    mount --bind "$R" "$R"
    mount -t proc proc "$R/proc"
    mount --rbind /sys "$R/sys"
    # (cgroupfs files report size 0: read them)
    if [ -n "$(cat "$R/sys/fs/cgroup/unified/cgroup.controllers" 2>/dev/null)" ]; then
      umount "$R/sys/fs/cgroup/unified"
    fi
    mount --rbind /dev "$R/dev"
    mount -t tmpfs -o mode=755 tmpfs "$R/run"
    mkdir -p "$R/run/lock"
    mount --bind /tmp "$R/tmp"
    eval "$2"
    cd "$R"
    pivot_root . .oldroot
    mount --move /.oldroot /host
  ' sh "$ROOT" "${NS_EXTRA_MOUNTS:-}"
  ns_ok || die "the namespace $NS did not come up"
  log "namespace $NS: $(elapsed "$start")s"
}

# ---------------------------------------------------------------- CRIU
criu_check() {
  local out version
  version=$(in_ns criu --version | awk '/^Version:/ { print $2 }')
  case $version in
    4.[2-9]* | 4.[1-9][0-9]* | [5-9].*) ;;
    *) die "criu $version in $ROOT; 4.2 or later is needed (see FROM_NEXT in $0)" ;;
  esac
  if ! out=$(in_ns criu check 2>&1); then
    printf '%s: `criu check` failed inside %s:\n%s\n' "$SCRIPT_NAME" "$ROOT" "$out" >&2
    exit 1
  fi
  log "criu $version check: $out"
}
