#!/usr/bin/env bash
# A real Kubernetes cluster on this machine (one node; two with --nodes 2, second-node.sh), for Cryo's end-to-end tests: etcd,
# kube-apiserver, controller-manager, scheduler, kube-proxy and a kubelet on containerd + runc +
# CRIU (or CRI-O + crun + CRIU), a CNI bridge of its own and a local registry. The node's
# programs run in a Debian 13 root entered through a private mount namespace (as the CRIU lab's),
# sharing the host's network and PID namespaces. See docs/cluster.md.
#
#   sudo bash scripts/cluster/cluster.sh [provision|up|down|status|check|kubectl ARGS|purge]
#
#   provision  the root, its packages and the Kubernetes binaries; seconds when already done
#   up         start the cluster (provisions first if needed); --runtime containerd|crio;
#              --nodes 2 adds a second node on this machine (second-node.sh)
#   down       stop every process of the cluster, remove its network and namespace, empty etcd
#              (certificates, images and the root stay)
#   status     which parts run
#   check      versions, `criu check`, and the guard's counters
#   kubectl    kubectl as cluster-admin
#   images [FLAGS]  build this repository's webhook, node-agent and controller images, offline, and
#              push them, with `npm run images` (FLAGS go to it) and the root's buildah
#   image-builder   print a folder whose `buildah` runs the root's buildah (for npm run images
#              --builder buildah, on PATH) and the Node base image to build on (--base-image)
#   app-image NAME DIR   an image of DIR (main.ts and its node_modules) on the Node base image
#   jvm-app-image NAME DIR   an image of DIR (compiled classes) at /app/classes on the JVM base image
#   purge      down, then delete the whole cluster directory
#
# Environment (defaults in brackets):
#   CRYO_KUBE_BIN_DIR     Kubernetes v1.34 binaries: kube-apiserver, kube-controller-manager,
#                         kube-scheduler, kube-proxy, kubelet, kubectl, plain or .xz, with a
#                         SHA256SUMS of the plain binaries beside them or one folder up [none]
#   CRYO_CRIO_BIN_DIR     crio, pinns (and crictl), likewise; only for --runtime crio [none]
#   CRYO_CLUSTER_RUNTIME  containerd or crio [containerd]
#   CRYO_CLUSTER_NODES    1, or 2 for node-2 beside node-1 (as --nodes) [1]
#   CRYO_CLUSTER_DIR      state, root and logs [/var/lib/cryo-cluster]
#   CRYO_CLUSTER_RUN_DIR  the namespace and pid files [/run/cryo-cluster]
#
# Nothing leaves the machine: the control plane listens on loopback and the bridge address only
# (a guard drops anything else that reaches its ports), the Service range is routed to the bridge,
# and the guard drops every packet of the pod or Service range that would leave by another
# interface, and every forwarded packet that is not bridge to bridge.

# Single-quoted scripts and formats below are expanded by another shell or program on purpose.
# shellcheck disable=SC2016
set -euo pipefail

CLUSTER_DIR=${CRYO_CLUSTER_DIR:-/var/lib/cryo-cluster}
ROOT=$CLUSTER_DIR/root
STATE=$CLUSTER_DIR/state
PKI=$STATE/pki
BIN=$CLUSTER_DIR/bin
LOG_DIR=$CLUSTER_DIR/logs
STAMP=$CLUSTER_DIR/provisioned
RUN_DIR=${CRYO_CLUSTER_RUN_DIR:-/run/cryo-cluster}
NS=$RUN_DIR/mnt
RUNTIME=${CRYO_CLUSTER_RUNTIME:-containerd}
SUITE=trixie
NEXT_SUITE=forky
PIN_NAME=cryo-cluster
SCRIPT_NAME=cluster.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

# The network: its own bridge and ranges, next to neither the lab's (10.89.0.0/24), Podman's
# (10.88.0.0/16) nor Docker's (172.17.0.0/16).
BRIDGE=cryo-k8s0
BRIDGE_MAC=02:63:72:79:6f:10
NODE_IP=10.86.0.1
POD_CIDR=10.86.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
NODE_NAME=node-1
REGISTRY_PORT=5000
# The node agent's read-only registry view of its directory store (--directory-registry-address):
# the runtime pulls directory checkpoints from it over plain HTTP on loopback.
DIRECTORY_VIEW_ADDRESS=127.0.0.1:5051
# Ports of the cluster that listen on more than loopback (8081: the node agent's health and metrics,
# on the host's network); the guard lets them in only from lo and the bridge.
GUARDED_PORTS="6443, $REGISTRY_PORT, 10250, 8081"

# containerd 2.1 + runc 1.3 + CRIU 4.2.1 come from forky (pinned; trixie has containerd 1.7 and
# CRIU 4.1.1, which cannot dump inet sockets on kernel >= 6.16); the rest is trixie's.
# conmon, crun, libseccomp2 and libsqlite3-0 are CRI-O's (its binary comes from CRYO_CRIO_BIN_DIR);
# netavark because buildah will not start without a network backend, even for `--network none`;
# openjdk-21-jre-headless for the JVM base image (jvm_base_image: made of the root's JRE).
PACKAGES=(containerd runc criu libcriu2 crun conmon catatonit containernetworking-plugins etcd-server
  docker-registry buildah skopeo checkpointctl busybox-static iproute2 iptables nftables conntrack
  libseccomp2 libsqlite3-0 ca-certificates mount netavark curl openjdk-21-jre-headless)
FROM_NEXT=(containerd runc criu libcriu2 libcompel1 libnet9 libnl-3-200)
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl)
CRIO_BINARIES=(crio pinns crictl)
STAMP_CONTENT="format 1: ${PACKAGES[*]}; from $NEXT_SUITE: ${FROM_NEXT[*]}"

# Inside the namespace: the cluster directory and the kubelet's and containerd's state at the same
# paths as on the host (archive paths the kubelet answers are the same files outside), and no
# hugepage sizes (the hugetlb controller is on the hidden cgroup2, so limits for it would fail).
NS_EXTRA_MOUNTS='
  for d in '"$CLUSTER_DIR"' /var/lib/kubelet /var/lib/containerd; do
    mkdir -p "$d" "$R$d"; mount --bind "$d" "$R$d"
  done
  mount -t tmpfs -o ro,size=4k tmpfs "$R/sys/kernel/mm/hugepages"
'

# shellcheck source=../lib/debian-root.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/debian-root.sh"
# shellcheck source=second-node.sh
. "$(dirname "${BASH_SOURCE[0]}")/second-node.sh"

KUBECTL=("$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig")

# ---------------------------------------------------------------- binaries
# Installs plain or .xz binaries from $1 into $BIN, each checked against a SHA256SUMS of the plain
# binaries in $1 or its parent.
install_binaries() {
  local from=$1 sums name src tmp want got
  shift
  [ -d "$from" ] || die "$from is not a directory"
  sums=$from/SHA256SUMS
  [ -f "$sums" ] || sums=$from/../SHA256SUMS
  mkdir -p "$BIN"
  for name in "$@"; do
    if [ -x "$BIN/$name" ] && [ -f "$sums" ] && [ "$(sha256sum <"$BIN/$name" | cut -d' ' -f1)" = "$(awk -v n="$name" '$2 == n { print $1 }' "$sums")" ]; then
      continue
    fi
    if [ -f "$from/$name.xz" ]; then src=$from/$name.xz; elif [ -f "$from/$name" ]; then src=$from/$name; else die "no $name or $name.xz in $from"; fi
    tmp=$BIN/.$name.tmp
    case $src in *.xz) xz -dc "$src" >"$tmp" ;; *) cp "$src" "$tmp" ;; esac
    got=$(sha256sum <"$tmp" | cut -d' ' -f1)
    if [ -f "$sums" ]; then
      want=$(awk -v n="$name" '$2 == n { print $1 }' "$sums")
      [ "$got" = "$want" ] || { rm -f "$tmp"; die "$name from $src has sha256 $got, $sums says ${want:-nothing}"; }
    else
      log "warning: no SHA256SUMS beside $from; $name not checked (sha256 $got)"
    fi
    chmod 755 "$tmp"
    mv "$tmp" "$BIN/$name"
    log "installed $name ($got)"
  done
}

kube_binaries_installed() { local n; for n in "${KUBE_BINARIES[@]}"; do [ -x "$BIN/$n" ] || return 1; done; }

# ---------------------------------------------------------------- provision
provision() {
  if [ -n "${CRYO_KUBE_BIN_DIR:-}" ]; then
    install_binaries "$CRYO_KUBE_BIN_DIR" "${KUBE_BINARIES[@]}"
  elif ! kube_binaries_installed; then
    die 'set CRYO_KUBE_BIN_DIR to a folder with the Kubernetes v1.34 binaries (docs/cluster.md)'
  fi
  if [ -n "${CRYO_CRIO_BIN_DIR:-}" ]; then install_binaries "$CRYO_CRIO_BIN_DIR" "${CRIO_BINARIES[@]}"; fi
  if root_provisioned; then
    log "cluster root already provisioned at $ROOT"
    return
  fi
  provision_root 'cluster root'
}

# ---------------------------------------------------------------- certificates
# A cluster CA and one certificate per identity, made once (kept across up/down).
cert() { # name subject [sans] [ca]
  local name=$1 subj=$2 sans=${3:-} ca=${4:-ca}
  [ -f "$PKI/$name.crt" ] && return
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo 'basicConstraints=CA:FALSE'
    echo 'keyUsage=critical,digitalSignature,keyEncipherment'
    echo 'extendedKeyUsage=serverAuth,clientAuth'
    if [ -n "$sans" ]; then echo "subjectAltName=$sans"; fi
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

ca() { # name cn
  [ -f "$PKI/$1.crt" ] && return
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.crt" -days 3650 -subj "/CN=$2" 2>/dev/null
}

kubeconfig() { # file cert-name [server]
  local server=${3:-https://127.0.0.1:6443}
  cat >"$STATE/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: cryo
  cluster:
    certificate-authority: $PKI/ca.crt
    server: $server
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: cryo
  context: {cluster: cryo, user: $2}
current-context: cryo
KC
}

make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  ca ca cryo-cluster-ca
  ca front-proxy-ca cryo-front-proxy-ca
  [ -f "$PKI/sa.key" ] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null; openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
  cert apiserver /CN=kube-apiserver "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  cert front-proxy-client /CN=front-proxy-client "" front-proxy-ca
  cert admin "/O=system:masters/CN=kubernetes-admin"
  cert controller-manager /CN=system:kube-controller-manager
  cert scheduler /CN=system:kube-scheduler
  cert kube-proxy /CN=system:kube-proxy
  cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME"
  cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
  # What the kube-apiserver presents to Cryo's webhook, which answers no one else (its
  # --client-ca-file is the cluster CA, --client-allowed-names this name). No group: the name
  # may do nothing in the API.
  cert apiserver-webhook-client /CN=kube-apiserver-webhook-client
  kubeconfig admin admin
  kubeconfig controller-manager controller-manager
  kubeconfig scheduler scheduler
  kubeconfig kube-proxy kube-proxy "https://$NODE_IP:6443"
  kubeconfig kubelet kubelet-client "https://$NODE_IP:6443"
  admission_config
}

# The kube-apiserver's admission configuration: the client certificate it presents to the webhook
# behind the Service cryo-webhook.cryo-system (port 443, so no port in the name; docs/security.md).
admission_config() {
  cat >"$STATE/admission-webhooks.kubeconfig" <<KC
apiVersion: v1
kind: Config
users:
- name: cryo-webhook.cryo-system.svc
  user:
    client-certificate: $PKI/apiserver-webhook-client.crt
    client-key: $PKI/apiserver-webhook-client.key
KC
  cat >"$STATE/admission.yaml" <<AC
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $STATE/admission-webhooks.kubeconfig
AC
}

# ---------------------------------------------------------------- network
# The guard comes first, before any Service or pod traffic, and everything after checks it.
guard_rules() {
  # The bridge, and node-2's veth when it runs (second-node.sh).
  local links ranges
  links=$(guard_links)
  ranges=$(guard_ranges)
  cat <<NFT
table inet cryo_cluster_guard
delete table inet cryo_cluster_guard
table inet cryo_cluster_guard {
  set cluster_ranges { type ipv4_addr; flags interval; elements = { $ranges } }
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr @cluster_ranges oifname != { "lo", $links } counter name escaped drop
  }
  chain postrouting {
    type filter hook postrouting priority 0; policy accept;
    ip daddr @cluster_ranges oifname != { "lo", $links } counter name escaped drop
    ip saddr @cluster_ranges oifname != { "lo", $links } counter name escaped drop
  }
  # Pods' packets to anywhere but the cluster's ranges and this host, dropped before routing:
  # counted whether or not this machine forwards (net.ipv4.ip_forward differs between machines).
  chain prerouting {
    type filter hook prerouting priority 0; policy accept;
    iifname { $links } ip daddr != @cluster_ranges fib daddr type != local counter name pod_egress_dropped drop
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname { $links } oifname { $links } accept
    iifname { $links } counter name forward_dropped drop
    oifname { $links } counter name forward_dropped drop
    ip saddr @cluster_ranges counter name forward_dropped drop
    ip daddr @cluster_ranges counter name forward_dropped drop
  }
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport { $GUARDED_PORTS } iifname != { "lo", $links } counter name inbound_refused drop
  }
  counter escaped {}
  counter forward_dropped {}
  counter pod_egress_dropped {}
  counter inbound_refused {}
}
NFT
}

network_up() {
  guard_rules | in_ns nft -f -
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  ip link set "$BRIDGE" address "$BRIDGE_MAC"
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE"
  ip route get "$KUBERNETES_SERVICE_IP" | grep -q "dev $BRIDGE" ||
    die "a ClusterIP would not go to $BRIDGE: $(ip route get "$KUBERNETES_SERVICE_IP")"
  in_ns nft list table inet cryo_cluster_guard >/dev/null || die 'the guard is not in place'
  mkdir -p "$ROOT/etc/cni/net.d"
  cat >"$ROOT/etc/cni/net.d/10-cryo.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "cryo",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR", "rangeStart": "${NODE_IP%.*}.2", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0", "gw": "$NODE_IP" }],
        "dataDir": "$STATE/cni"
      }
    }
  ]
}
CNI
}

network_down() {
  ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  local link
  for link in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
    ip link delete "$link" 2>/dev/null || true
  done
  ip link delete "$BRIDGE" 2>/dev/null || true
  if ns_ok; then in_ns nft delete table inet cryo_cluster_guard 2>/dev/null || true; fi
}

# ---------------------------------------------------------------- processes
pidfile() { echo "$RUN_DIR/$1.pid"; }
running() { local p; p=$(cat "$(pidfile "$1")" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# Starts a program in the namespace, in a session of its own, logging to $LOG_DIR/<name>.log.
start() {
  local name=$1
  shift
  if running "$name"; then return; fi
  mkdir -p "$LOG_DIR"
  # Not through in_ns: a backgrounded function would leave a subshell's pid in $!.
  nsenter --mount="$NS" -- "${NS_ENV[@]}" setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

stop() {
  local name=$1 pid i
  pid=$(cat "$(pidfile "$name")" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$name")"
}

poll() { # seconds command...: 0 once the command succeeds, 1 when the time is up
  local seconds=$1 i
  shift
  for i in $(seq $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

wait_for() { # what seconds command...
  local what=$1 seconds=$2
  shift 2
  poll "$seconds" "$@" || die "$what did not come up in ${seconds}s (logs: $LOG_DIR)"
}

start_registry() {
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<REG
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: $STATE/registry }
  delete: { enabled: true }
http:
  addr: 0.0.0.0:$REGISTRY_PORT
REG
  start registry docker-registry serve "$STATE/registry.yml"
}

start_etcd() {
  start etcd etcd --name default --data-dir "$STATE/etcd" --unsafe-no-fsync \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster default=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381
}

start_control_plane() {
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
    --endpoint-reconciler-type=lease --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
    --admission-control-config-file="$STATE/admission.yaml" \
    --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group \
    --requestheader-username-headers=X-Remote-User \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key"
  wait_for kube-apiserver 60 "${KUBECTL[@]}" get --raw /readyz
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --controllers='*,service-ca-cert-publisher' --node-monitor-grace-period=20s
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false
}

start_kube_proxy() {
  start kube-proxy "$BIN/kube-proxy" --kubeconfig="$STATE/kube-proxy.kubeconfig" --proxy-mode=iptables \
    --hostname-override="$NODE_NAME" --cluster-cidr="$POD_CIDR" --nodeport-addresses="$NODE_IP/32" \
    --iptables-localhost-nodeports=false --conntrack-max-per-core=0 \
    --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249
}

# ---------------------------------------------------------------- the runtimes
RUNTIME_SOCKET=
write_containerd_config() {
  local host
  for host in "127.0.0.1:$REGISTRY_PORT" "$NODE_IP:$REGISTRY_PORT" "$DIRECTORY_VIEW_ADDRESS"; do
    mkdir -p "$ROOT/etc/containerd/certs.d/$host"
    printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve", "push"]\n' "$host" "$host" \
      >"$ROOT/etc/containerd/certs.d/$host/hosts.toml"
  done
  cat >"$ROOT/etc/containerd/config.toml" <<TOML
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "127.0.0.1:$REGISTRY_PORT/cryo/pause:1"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "/etc/containerd/certs.d"

[plugins.'io.containerd.cri.v1.runtime']
  # No CAP_SYS_RESOURCE here: runc could not lower oom_score_adj for sandboxes.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
TOML
}

# CRI-O (the seed's engine; Debian does not package it: its binaries come from CRYO_CRIO_BIN_DIR)
# with conmon, crun and CRIU from the root.
write_crio_config() {
  mkdir -p "$ROOT/etc/crio" "$STATE/crio"
  # No CAP_SYS_RESOURCE here and no restrict_oom_score_adj in CRI-O: crun would fail to lower
  # oom_score_adj for sandboxes and Guaranteed pods, so a wrapper raises negative values to 0.
  # For the same reason it drops CAP_SYS_RESOURCE from a bundle's capabilities: CRI-O gives a
  # privileged container (the node agent's, for its CSI driver) every capability the kernel knows,
  # and capset fails for one this machine does not have (containerd gives its own, so never it).
  cat >"$ROOT/usr/local/bin/crun-oom-score-floor" <<'WRAP'
#!/bin/sh
# crun, with every negative process.oomScoreAdj in the bundle (create/run/restore) or the process
# file (exec) raised to 0, and CAP_SYS_RESOURCE left out of the bundle's capabilities: this
# machine may not lower oom_score_adj and has no CAP_SYS_RESOURCE to give.
bundle() {
  sed -i -E 's/"oomScoreAdj": ?-[0-9]+/"oomScoreAdj":0/' "$1"
  perl -0pi -e 's/,\s*"CAP_SYS_RESOURCE"|"CAP_SYS_RESOURCE"\s*,?//g' "$1"
}
prev=
for arg in "$@"; do
  case $prev in
    --bundle|-b) [ -f "$arg/config.json" ] && bundle "$arg/config.json" ;;
    --process|-p) [ -f "$arg" ] && sed -i -E 's/"oomScoreAdj": ?-[0-9]+/"oomScoreAdj":0/' "$arg" ;;
  esac
  case $arg in
    --bundle=*) f=${arg#--bundle=}/config.json; [ -f "$f" ] && bundle "$f" ;;
  esac
  prev=$arg
done
exec /usr/bin/crun "$@"
WRAP
  chmod 755 "$ROOT/usr/local/bin/crun-oom-score-floor"
  cat >"$ROOT/etc/crio/crio.conf" <<TOML
[crio]
# The default storage, where a real node has it (the agent reads CRIU's dump.log under it).
root = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
storage_driver = "overlay"
log_dir = "/var/log/crio/pods"

[crio.api]
listen = "/run/crio/crio.sock"

[crio.runtime]
default_runtime = "crun"
cgroup_manager = "cgroupfs"
conmon_cgroup = "pod"
pinns_path = "$BIN/pinns"
# CRI-O 1.34 has no [crio.checkpoint_restore] yet: this switches checkpoint and restore on.
enable_criu_support = true

[crio.runtime.runtimes.crun]
runtime_path = "/usr/local/bin/crun-oom-score-floor"
runtime_type = "oci"
runtime_root = "/run/crun"
monitor_path = "/usr/bin/conmon"
monitor_cgroup = "pod"

[crio.image]
pause_image = "127.0.0.1:$REGISTRY_PORT/cryo/pause:1"
pause_command = ""
insecure_registries = ["127.0.0.1:$REGISTRY_PORT", "$NODE_IP:$REGISTRY_PORT", "$DIRECTORY_VIEW_ADDRESS"]

[crio.network]
network_dir = "/etc/cni/net.d"
plugin_dirs = ["/usr/lib/cni"]
TOML
}

runtime_socket() { case $RUNTIME in containerd) echo /run/containerd/containerd.sock ;; crio) echo /run/crio/crio.sock ;; esac; }

start_runtime() {
  RUNTIME_SOCKET=$(runtime_socket)
  case $RUNTIME in
    containerd)
      write_containerd_config
      start containerd containerd --config /etc/containerd/config.toml
      ;;
    crio)
      [ -x "$BIN/crio" ] && [ -x "$BIN/pinns" ] || die "no CRI-O binaries in $BIN: provision with CRYO_CRIO_BIN_DIR set (docs/cluster.md)"
      write_crio_config
      start crio "$BIN/crio" --config /etc/crio/crio.conf
      ;;
    *) die "unknown runtime '$RUNTIME' (containerd or crio)" ;;
  esac
  wait_for "$RUNTIME" 30 in_ns test -S "$RUNTIME_SOCKET"
}

# Stops every container the runtime still runs (the kubelet is stopped first), then the runtime.
stop_runtime() {
  if running containerd; then
    in_ns ctr -n k8s.io tasks list -q 2>/dev/null | while read -r id; do in_ns ctr -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
  fi
  if running crio; then
    # CRI-O gives each container 30 s of SIGTERM grace on a sandbox stop: stop them at once first.
    local crictl=("$BIN/crictl" --runtime-endpoint unix:///run/crio/crio.sock --timeout 10s)
    in_ns "${crictl[@]}" ps -q 2>/dev/null | while read -r id; do in_ns "${crictl[@]}" stop --timeout 0 "$id" >/dev/null 2>&1 || true; done
    in_ns "${crictl[@]}" rmp --all --force >/dev/null 2>&1 || true
  fi
  stop containerd
  stop crio
  # Shims and monitors outlive their runtime (only those of this namespace: the CRIU lab's Podman
  # runs conmon too), and so do containers: whatever is left in the pods' cgroups.
  local pid ns_inode
  if ns_inode=$(stat -L -c %i "$NS" 2>/dev/null); then
    for pid in $(pgrep -f 'containerd-shim-runc|/usr/bin/conmon' 2>/dev/null || true); do
      if [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "mnt:[$ns_inode]" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
  fi
  find /sys/fs/cgroup/pids/kubepods* -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
}

write_kubelet_config() {
  cat >"$STATE/kubelet.yaml" <<KUBELET
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://$RUNTIME_SOCKET
# No DNS server runs here, and pods must not reach the host's.
resolvConf: $STATE/resolv.conf
clusterDomain: cluster.local
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: Webhook }
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
evictionHard: { memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
imageGCHighThresholdPercent: 100
serializeImagePulls: false
featureGates: { ContainerCheckpoint: true }
KUBELET
  printf '# no nameserver: pods of the test cluster resolve nothing\noptions ndots:1\n' >"$STATE/resolv.conf"
}

# ---------------------------------------------------------------- images
# buildah inside the root, with a storage of its own: CRI-O has the default one, as on a real node.
buildah_() { in_ns buildah --root "$STATE/buildah" --runroot /run/buildah --storage-driver overlay "$@"; }
in_registry() { curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$REGISTRY_PORT/v2/$1/manifests/$2"; }

# The sandbox ("pause") image: catatonit as PID 1 of every pod, built here (no internet).
ensure_pause_image() {
  in_registry cryo/pause 1 && return
  local c
  c=$(buildah_ from scratch)
  buildah_ copy "$c" /usr/bin/catatonit /catatonit >/dev/null
  buildah_ config --entrypoint '["/catatonit","-P"]' --label io.cri-o.pause=true "$c"
  buildah_ commit --rm "$c" cryo/pause:1 >/dev/null
  buildah_ push --tls-verify=false cryo/pause:1 "docker://127.0.0.1:$REGISTRY_PORT/cryo/pause:1" >/dev/null 2>&1
  log "pushed the pause image 127.0.0.1:$REGISTRY_PORT/cryo/pause:1"
}

# A busybox image for the tests' probes (wget, nc) and simple apps.
ensure_busybox_image() {
  in_registry cryo-test/busybox 1 && return
  local c
  c=$(buildah_ from scratch)
  buildah_ copy "$c" /usr/bin/busybox /bin/busybox >/dev/null
  buildah_ copy "$c" /usr/bin/busybox /bin/sh >/dev/null
  buildah_ config --entrypoint '["/bin/sh"]' "$c"
  buildah_ commit --rm "$c" cryo-test/busybox:1 >/dev/null
  buildah_ push --tls-verify=false cryo-test/busybox:1 "docker://127.0.0.1:$REGISTRY_PORT/cryo-test/busybox:1" >/dev/null 2>&1
  log "pushed the busybox image 127.0.0.1:$REGISTRY_PORT/cryo-test/busybox:1"
}

# The Node base image the Dockerfiles take as BASE_IMAGE, made here without any registry: the
# repository's Node 24 binary, the host's npm, busybox as /bin/sh, mount and umount, and the C libraries Node links
# against, from the root. Tagged by the sha256 of its parts, so it is built once per change.
NODE_BASE=cryo/node-base
ensure_node_base_image() { # repo
  local repo=$1 node npm dir tag lib c
  node=$(readlink -f "$repo/node_modules/node/bin/node")
  [ -x "$node" ] || die "no Node binary at $repo/node_modules/node/bin/node: run npm ci in $repo first"
  npm=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npm/bin/npm-cli.js" ] || die "npm not found beside $(command -v npm)"
  tag=$( { sha256sum "$node" "$npm/package.json" "$ROOT/usr/bin/busybox"; echo "format 2"; } | sha256sum | cut -c1-16)
  if in_registry "$NODE_BASE" "$tag"; then echo "127.0.0.1:$REGISTRY_PORT/$NODE_BASE:$tag"; return; fi
  dir=$(mktemp -d)
  mkdir -p "$dir/bin" "$dir/usr/bin" "$dir/usr/local/bin" "$dir/usr/local/lib/node_modules" "$dir/lib64" \
    "$dir/lib/x86_64-linux-gnu" "$dir/etc/ssl/certs" "$dir/tmp" "$dir/root"
  chmod 1777 "$dir/tmp"
  cp "$ROOT/usr/bin/busybox" "$dir/bin/busybox"
  ln -s busybox "$dir/bin/sh"
  ln -s /bin/busybox "$dir/usr/bin/env"
  # The node agent's CSI driver runs mount and umount (a Debian base has util-linux's).
  ln -s busybox "$dir/bin/mount"
  ln -s busybox "$dir/bin/umount"
  cp "$node" "$dir/usr/local/bin/node"
  cp -a "$npm" "$dir/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  cp -L "$ROOT/lib64/ld-linux-x86-64.so.2" "$dir/lib64/"
  for lib in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 libgcc_s.so.1 libstdc++.so.6; do
    cp -L "$ROOT/lib/x86_64-linux-gnu/$lib" "$dir/lib/x86_64-linux-gnu/"
  done
  cp -L "$ROOT/etc/ssl/certs/ca-certificates.crt" "$dir/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$dir/etc/group"
  c=$(buildah_ from scratch)
  buildah_ copy "$c" "/host$dir" / >/dev/null
  buildah_ config --env PATH=/usr/local/bin:/usr/bin:/bin --cmd node "$c"
  buildah_ commit --rm "$c" "$NODE_BASE:$tag" >/dev/null
  buildah_ push --tls-verify=false "$NODE_BASE:$tag" "docker://127.0.0.1:$REGISTRY_PORT/$NODE_BASE:$tag" >/dev/null 2>&1
  rm -rf "$dir"
  echo "127.0.0.1:$REGISTRY_PORT/$NODE_BASE:$tag"
}

# `npm run images` (README.md, "Build and push the images") builds Cryo's images here as it does
# for users, with buildah as its builder: the buildah of the cluster's root, through a `buildah`
# on PATH (image_builder below) that runs it there. Prints "name reference@digest" per image.
# Extra arguments go to `npm run images` (such as --kustomization FILE; by default it sets the
# images of a scratch copy of manifests/Kustomization, which the tests' installs do not read).
images() {
  local base builder scratch status=0
  base=$(ensure_node_base_image "$REPO")
  builder=$(image_builder_dir)
  scratch=$(mktemp -d)
  cp "$REPO/manifests/Kustomization" "$scratch/Kustomization"
  PATH="$builder:$PATH" "$REPO/node_modules/node/bin/node" "$REPO/scripts/build-images.ts" \
    --registry "127.0.0.1:$REGISTRY_PORT/cryo" --builder buildah --tag dev --base-image "$base" \
    --kustomization "$scratch/Kustomization" "$@" || status=$?
  rm -rf "$scratch"
  # The images they replace (pushed already): every build would otherwise keep ~1 GB of them.
  buildah_ rmi --prune >/dev/null 2>&1 || true
  return "$status"
}

# A folder with a `buildah` that runs the cluster root's buildah on this host's files, for
# `npm run images --builder buildah` (PATH=<folder>:$PATH): host paths in its arguments become
# /host/... in the root, and builds run with no network, on a copy of this host's npm cache (which
# `npm ci` filled) mounted where npm looks, and pull from and push to the local plain-HTTP registry.
image_builder_dir() {
  local dir=$STATE/image-builder
  mkdir -p "$dir"
  printf '#!/bin/sh\nexec bash %q buildah-for-images "$@"\n' "$REPO/scripts/cluster/$SCRIPT_NAME" >"$dir/buildah"
  chmod 755 "$dir/buildah"
  echo "$dir"
}

buildah_for_images() {
  local command=${1:?usage: buildah-for-images build|push ARGS} arg previous= name=image cache status=0
  shift
  local args=()
  for arg in "$@"; do
    # -f <repo>/<component>/Dockerfile names the build's log.
    if [ "$previous" = -f ]; then name=$(basename "$(dirname "$arg")"); fi
    previous=$arg
    if [[ $arg == /* ]]; then args+=("/host$arg"); else args+=("$arg"); fi
  done
  case $command in
    build)
      cache=$(mktemp -d)
      # A fresh copy each build: the Dockerfiles end with `npm cache clean`.
      cp -a "$(npm config get cache)/_cacache" "$cache/_cacache"
      # stdout is npm run images' own (it prints the images it built): the log goes to stderr.
      logged "build-$name" buildah_ build --network none --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$(ulimit -Hu):$(ulimit -Hu)" \
        --layers=false --pull=missing --tls-verify=false --volume "/host$cache:/root/.npm" "${args[@]}" >&2 || status=$?
      rm -rf "$cache"
      return "$status" ;;
    push) buildah_ push --tls-verify=false "${args[@]}" >&2 ;;
    *) die "buildah-for-images runs build and push only, not $command" ;;
  esac
}

# An app image for the tests: the folder $2 (main.ts and its node_modules) at /app on the base
# image, started as `node main.ts`. Prints its reference pinned by digest.
app_image() { # name dir
  local name=$1 dir base c ref digestfile
  dir=$(readlink -f "$2")
  base=$(ensure_node_base_image "$REPO")
  ref=127.0.0.1:$REGISTRY_PORT/cryo-test/$name
  digestfile=$(mktemp)
  c=$(buildah_ from --tls-verify=false "$base")
  buildah_ copy "$c" "/host$dir" /app >/dev/null
  buildah_ config --workingdir /app --entrypoint '["node","main.ts"]' --cmd '' "$c"
  buildah_ commit --rm "$c" "cryo-test/$name:dev" >/dev/null
  buildah_ push --tls-verify=false --digestfile "/host$digestfile" "cryo-test/$name:dev" "docker://$ref:dev" >/dev/null 2>&1
  echo "$ref@$(cat "$digestfile")"
  rm -f "$digestfile"
}

# The JVM base image: the root's OpenJDK 21 JRE as scripts/lib/jvm-rootfs.sh lays it out, java on
# PATH. Tagged by the sha256 of the JRE's libjvm.so and release file and of the recipe.
JVM_BASE=cryo/jvm-base
ensure_jvm_base_image() {
  local dir tag c
  # shellcheck source=../lib/jvm-rootfs.sh
  . "$(dirname "${BASH_SOURCE[0]}")/../lib/jvm-rootfs.sh"
  [ -x "$ROOT$JVM_HOME/bin/java" ] || die "no OpenJDK 21 in the cluster's root: run cluster.sh provision again (it installs openjdk-21-jre-headless)"
  tag=$( { sha256sum "$ROOT$JVM_HOME/lib/server/libjvm.so" "$ROOT$JVM_HOME/release" "$(dirname "${BASH_SOURCE[0]}")/../lib/jvm-rootfs.sh"; } | sha256sum | cut -c1-16)
  if in_registry "$JVM_BASE" "$tag"; then echo "127.0.0.1:$REGISTRY_PORT/$JVM_BASE:$tag"; return; fi
  dir=$(mktemp -d)
  jvm_rootfs "$ROOT" "$dir/root" >&2
  c=$(buildah_ from scratch)
  buildah_ copy "$c" "/host$dir/root" / >/dev/null
  buildah_ config --env "PATH=$JVM_HOME/bin:/bin" --cmd java "$c"
  buildah_ commit --rm "$c" "$JVM_BASE:$tag" >/dev/null
  buildah_ push --tls-verify=false "$JVM_BASE:$tag" "docker://127.0.0.1:$REGISTRY_PORT/$JVM_BASE:$tag" >/dev/null 2>&1
  rm -rf "$dir"
  echo "127.0.0.1:$REGISTRY_PORT/$JVM_BASE:$tag"
}

# A JVM app image for the tests: the folder $2 (compiled classes) at /app/classes on the JVM base
# image, `java` as entrypoint; the pod's args give the flags and the main class (docs/jvm.md).
# Prints its reference pinned by digest.
jvm_app_image() { # name dir
  local name=$1 dir base c ref digestfile
  dir=$(readlink -f "$2")
  base=$(ensure_jvm_base_image)
  ref=127.0.0.1:$REGISTRY_PORT/cryo-test/$name
  digestfile=$(mktemp)
  c=$(buildah_ from --tls-verify=false "$base")
  buildah_ copy "$c" "/host$dir" /app/classes >/dev/null
  buildah_ config --workingdir /app --entrypoint '["java"]' --cmd '' "$c"
  buildah_ commit --rm "$c" "cryo-test/$name:dev" >/dev/null
  buildah_ push --tls-verify=false --digestfile "/host$digestfile" "cryo-test/$name:dev" "docker://$ref:dev" >/dev/null 2>&1
  echo "$ref@$(cat "$digestfile")"
  rm -f "$digestfile"
}

# ---------------------------------------------------------------- up / down
up() {
  local start_time=$EPOCHREALTIME
  provision
  mkdir -p "$RUN_DIR" "$STATE"
  if [ -f "$RUN_DIR/runtime" ] && [ "$(cat "$RUN_DIR/runtime")" != "$RUNTIME" ]; then
    log "switching from $(cat "$RUN_DIR/runtime") to $RUNTIME"
    down
  fi
  # One node asked for while node-2 runs (a cluster kept up): node-2 goes, and its Node below.
  local drop_node2=
  if [ "$NODES" = 1 ] && node2_present; then node2_down; drop_node2=1; fi
  make_ns
  # Shared inside the namespace, as systemd makes them on a real node: the kubelet and the runtime
  # refuse HostToContainer and Bidirectional mounts from private ones.
  in_ns mount --make-rshared /
  make_pki
  network_up
  start_registry
  start_etcd
  wait_for registry 30 curl -sf "http://127.0.0.1:$REGISTRY_PORT/v2/"
  ensure_pause_image
  ensure_busybox_image
  start_control_plane
  if [ -n "$drop_node2" ]; then "${KUBECTL[@]}" delete node "$NODE2_NAME" --ignore-not-found >/dev/null; fi
  start_runtime
  echo "$RUNTIME" >"$RUN_DIR/runtime"
  write_kubelet_config
  start_kubelet
  start_kube_proxy
  if [ "$NODES" = 2 ]; then node2_up; fi
  if ! wait_node_ready 90; then
    # What the node says and the kubelet's last words, for a failure seen only in CI logs.
    {
      echo "node $NODE_NAME conditions:"
      "${KUBECTL[@]}" get node "$NODE_NAME" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' 2>&1 || true
      echo "kubelet log, last 40 lines:"
      tail -n 40 "$LOG_DIR/kubelet.log" 2>&1 || true
    } >&2
    die "node $NODE_NAME Ready did not come up in 90s (logs: $LOG_DIR)"
  fi
  if [ "$NODES" = 2 ]; then node2_wait_ready 90; fi
  log "cluster up on $RUNTIME in $(elapsed "$start_time")s (kubectl: sudo bash $0 kubectl ...)"
}

start_kubelet() {
  start kubelet "$BIN/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --node-ip="$NODE_IP" --hostname-override="$NODE_NAME" --v=1
}

node_ready() {
  "${KUBECTL[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

# Waits for the node to turn Ready, starting the kubelet again whenever it exits. It exits when the
# runtime's socket is there but its CRI does not answer yet ("validate CRI v1 runtime API for
# endpoint ...: server is not ready"): seen every time containerd came up right after CRI-O ran.
wait_node_ready() { # seconds
  local i restarts=0
  for i in $(seq $(($1 * 5))); do
    if node_ready; then return 0; fi
    if ! running kubelet; then
      if [ "$restarts" -ge 10 ]; then return 1; fi
      restarts=$((restarts + 1))
      log "kubelet exited ($(tail -n 1 "$LOG_DIR/kubelet.log" | cut -c1-240)); starting it again"
      sleep 1
      start_kubelet
    fi
    sleep 0.2
  done
  return 1
}

down() {
  node2_down
  stop kubelet
  stop kube-proxy
  if ns_ok && [ -x "$BIN/kube-proxy" ]; then in_ns "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  stop_runtime
  local name
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd registry; do stop "$name"; done
  # Every up starts from an empty cluster: objects a previous run left (another runtime's pods,
  # an older install of Cryo mid-rollout) would otherwise come back and race the next tests.
  rm -rf "$STATE/etcd" "$STATE/cni"
  network_down
  drop_ns
  if mountpoint -q "$RUN_DIR"; then umount "$RUN_DIR"; fi
  rm -f "$RUN_DIR/runtime"
  # Empty cgroups the kubelet and the runtime made.
  find /sys/fs/cgroup -depth -type d -path '*/kubepods*' -exec rmdir {} \; 2>/dev/null || true
  log 'cluster down (etcd emptied; certificates and images stay in '"$STATE"'; `purge` removes them)'
}

status() {
  local name
  for name in registry etcd kube-apiserver kube-controller-manager kube-scheduler containerd crio kubelet kube-proxy; do
    if running "$name"; then echo "$name: running (pid $(cat "$(pidfile "$name")"))"; else echo "$name: stopped"; fi
  done
  node2_status
}

check() {
  ns_ok || make_ns
  in_ns dpkg-query -W -f '${Package} ${Version}\n' containerd runc criu crun etcd-server
  "$BIN/kubelet" --version
  criu_check
  in_ns nft list counters table inet cryo_cluster_guard 2>/dev/null || echo 'guard: not loaded'
}

cmd=${1:-up}
shift || true
while [ $# -gt 0 ]; do
  case $1 in
    --runtime) RUNTIME=$2; shift 2 ;;
    --runtime=*) RUNTIME=${1#*=}; shift ;;
    --nodes) NODES=$2; shift 2 ;;
    --nodes=*) NODES=${1#*=}; shift ;;
    *) break ;;
  esac
done
case $NODES in 1 | 2) ;; *) die "--nodes (CRYO_CLUSTER_NODES) is 1 or 2, not '$NODES'" ;; esac
require_root "$cmd"
case "$cmd" in
  provision) provision ;;
  up) up ;;
  down) down ;;
  status) status ;;
  check) check ;;
  kubectl) exec "${KUBECTL[@]}" "$@" ;;
  images) ns_ok || die 'the cluster is not up'; images "$@" ;;
  image-builder) ns_ok || die 'the cluster is not up'; image_builder_dir; ensure_node_base_image "$REPO" ;;
  buildah-for-images) ns_ok || die 'the cluster is not up'; buildah_for_images "$@" ;;
  reboot-node)
    ns_ok || die 'the cluster is not up'
    [ "${1:-}" = "$NODE2_NAME" ] || die "usage: cluster.sh reboot-node $NODE2_NAME (node-1 carries the control plane's host and does not reboot)"
    node2_reboot
    ;;
  app-image) ns_ok || die 'the cluster is not up'; app_image "${1:?usage: cluster.sh app-image NAME DIR}" "${2:?usage: cluster.sh app-image NAME DIR}" ;;
  jvm-app-image) ns_ok || die 'the cluster is not up'; jvm_app_image "${1:?usage: cluster.sh jvm-app-image NAME DIR}" "${2:?usage: cluster.sh jvm-app-image NAME DIR}" ;;
  purge)
    down
    unmount_under "$ROOT"
    rm -rf --one-file-system "$CLUSTER_DIR"
    log "removed $CLUSTER_DIR"
    ;;
  *) die "unknown command '$cmd' (provision|up|down|status|check|kubectl|images|app-image|jvm-app-image|reboot-node|purge)" ;;
esac
