# shellcheck shell=bash
# Sourced by cluster.sh: the opt-in second node, node-2, on this same machine (`up --nodes 2` or
# CRYO_CLUSTER_NODES=2; docs/cluster.md, "A second node on the same machine").
#
# node-2 is a kubelet, a kube-proxy and a runtime (containerd + runc, or CRI-O + crun; CRIU the
# same) of its own, in
#   - a network namespace of its own ($NODE2_NET), joined to the host by a veth ($NODE2_LINK):
#     its node IP 10.87.0.1 on its own bridge (cryo-k8s1), its pods in 10.87.0.0/16, its own
#     ports (10250, 8081, 127.0.0.1:5051 ...) and its own iptables (its kube-proxy);
#   - a mount namespace of its own ($NODE2_NS) on the same Debian root, in which the paths a node
#     owns are its own directories under $NODE2_DIR, bound at the usual paths: /var/lib/kubelet,
#     /var/lib/containerd, /var/lib/containers, /var/lib/crio, /var/lib/cni, /var/lib/cryo,
#     /var/log, /etc/containerd, /etc/crio, /etc/cni/net.d; /run is its own tmpfs. So the node
#     agent's DaemonSet, whose hostPaths are /var/run/cryo/hooks, /var/lib/kubelet/checkpoints,
#     /etc/containerd ..., finds node-2's own files on node-2 with the same manifest;
#   - cgroups of its own: the kubelet's --cgroup-root /cryo-node-2 (node-1's pods are in
#     /kubepods; two kubelets on one cgroup root would remove each other's pods as orphans).
# Shared with node-1: the kernel, the PID namespace, /sys, /dev, /tmp, the host's /proc, and the
# cluster directory (certificates, kubeconfigs, logs).
#
# The host routes 10.87.0.0/16 to the veth (with 10.86.0.1 as its source), node-2's default
# route is the host, and both ends forward (per interface: the host's global net.ipv4.ip_forward
# stays as it is). The guard (cluster.sh guard_rules) takes the veth in beside the bridge and
# 10.87.0.0/16 into the cluster's ranges: node-2's only way anywhere is through the host and the
# guard. Inside node-2, the host's registry on 127.0.0.1:5000 (the name every image has) is
# node-2's loopback DNATed to 10.86.0.1:5000.

# Single-quoted scripts below are expanded by another shell on purpose.
# shellcheck disable=SC2016

NODES=${CRYO_CLUSTER_NODES:-1}
NODE2_NAME=node-2
NODE2_IP=10.87.0.1
NODE2_POD_CIDR=10.87.0.0/16
# Both nodes' pod ranges (10.86.0.0/16 and 10.87.0.0/16): what node-2's kube-proxy calls the cluster's.
NODE2_CLUSTER_CIDR=10.86.0.0/15
NODE2_BRIDGE=cryo-k8s1
NODE2_BRIDGE_MAC=02:63:72:79:6f:11
NODE2_LINK=cryo-n2
# The veth's own addresses: link-local plumbing. Traffic between the host and node-2 carries the
# node IPs (the routes name them as sources).
NODE2_LINK_HOST=169.254.86.1
NODE2_LINK_PEER=169.254.86.2
NODE2_DIR=$CLUSTER_DIR/node-2
# Its mount namespace is pinned in a folder of its own, where make_ns keeps its own lock: the lock
# of $RUN_DIR is held by every process of node-1 (they inherit its descriptor).
NODE2_RUN_DIR=$RUN_DIR/node-2
NODE2_NS=$NODE2_RUN_DIR/mnt
NODE2_NET=$RUN_DIR/net-node-2
NODE2_CGROUP=cryo-node-2
NODE2_PROCESSES=(kubelet-node-2 kube-proxy-node-2 containerd-node-2 crio-node-2)
# Bound at the path after '=' inside node-2's mount namespace.
NODE2_MOUNTS="$CLUSTER_DIR=$CLUSTER_DIR"
for d in /var/lib/kubelet /var/lib/containerd /var/lib/containers /var/lib/crio /var/lib/cni /var/lib/cryo \
  /var/log /etc/containerd /etc/crio /etc/cni/net.d; do
  NODE2_MOUNTS+=" $NODE2_DIR$d=$d"
done
unset d

# The guard's interfaces and ranges (cluster.sh guard_rules).
guard_links() { if [ "$NODES" = 2 ]; then echo "\"$BRIDGE\", \"$NODE2_LINK\""; else echo "\"$BRIDGE\""; fi; }
guard_ranges() { if [ "$NODES" = 2 ]; then echo "$POD_CIDR, $NODE2_POD_CIDR, $SERVICE_CIDR"; else echo "$POD_CIDR, $SERVICE_CIDR"; fi; }

in_node2() { nsenter --mount="$NODE2_NS" --net="$NODE2_NET" -- "${NS_ENV[@]}" "$@"; }
in_node2_net() { nsenter --net="$NODE2_NET" -- "$@"; }
node2_start() { # name command...: as start, in node-2's namespaces
  local name=$1
  shift
  if running "$name"; then return; fi
  mkdir -p "$LOG_DIR"
  nsenter --mount="$NODE2_NS" --net="$NODE2_NET" -- "${NS_ENV[@]}" setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}
node2_present() {
  local name
  for name in "${NODE2_PROCESSES[@]}"; do [ -e "$(pidfile "$name")" ] && return 0; done
  [ -e "$NODE2_NS" ] || [ -e "$NODE2_NET" ] || mountpoint -q "$NODE2_RUN_DIR" || ip link show "$NODE2_LINK" >/dev/null 2>&1
}

node2_pki() {
  cert kubelet-client-node-2 "/O=system:nodes/CN=system:node:$NODE2_NAME"
  cert kubelet-serving-node-2 "/O=system:nodes/CN=system:node:$NODE2_NAME" "DNS:$NODE2_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE2_IP"
  kubeconfig kubelet-node-2 kubelet-client-node-2 "https://$NODE_IP:6443"
}

# The network namespace, pinned at $NODE2_NET, and the veth; the namespace's own side is set up
# by node2_network_inside once the mount namespace exists (its nft and sysctl are the root's).
node2_network_up() {
  mkdir -p "$RUN_DIR"
  if ! findmnt -n "$NODE2_NET" >/dev/null 2>&1; then
    touch "$NODE2_NET"
    unshare --net="$NODE2_NET" true
  fi
  if ! ip link show "$NODE2_LINK" >/dev/null 2>&1; then
    ip link add "$NODE2_LINK" type veth peer name eth0 netns "$NODE2_NET"
  fi
  ip addr replace "$NODE2_LINK_HOST/30" dev "$NODE2_LINK"
  ip link set "$NODE2_LINK" up
  ip route replace "$NODE2_POD_CIDR" via "$NODE2_LINK_PEER" dev "$NODE2_LINK" src "$NODE_IP"
  # Forwarding on the two interfaces between the nodes only (IPv4 decides by the incoming one);
  # the guard's forward chain allows nothing else through them.
  echo 1 >"/proc/sys/net/ipv4/conf/$NODE2_LINK/forwarding"
  echo 1 >"/proc/sys/net/ipv4/conf/$BRIDGE/forwarding"
  in_node2_net ip link set lo up
  in_node2_net ip addr replace "$NODE2_LINK_PEER/30" dev eth0
  in_node2_net ip link set eth0 up
  if ! in_node2_net ip link show "$NODE2_BRIDGE" >/dev/null 2>&1; then
    in_node2_net ip link add "$NODE2_BRIDGE" type bridge
  fi
  in_node2_net ip link set "$NODE2_BRIDGE" address "$NODE2_BRIDGE_MAC"
  in_node2_net ip addr replace "$NODE2_IP/${NODE2_POD_CIDR#*/}" dev "$NODE2_BRIDGE"
  in_node2_net ip link set "$NODE2_BRIDGE" up
  in_node2_net ip route replace default via "$NODE2_LINK_HOST" dev eth0 src "$NODE2_IP"
  # These sysctls are node-2's network namespace's own.
  in_node2_net sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward; echo 1 >/proc/sys/net/ipv4/conf/eth0/route_localnet'
  mkdir -p "$NODE2_DIR/etc/cni/net.d"
  cat >"$NODE2_DIR/etc/cni/net.d/10-cryo.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "cryo",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE2_BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$NODE2_POD_CIDR", "rangeStart": "${NODE2_IP%.*}.2", "gateway": "$NODE2_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0", "gw": "$NODE2_IP" }],
        "dataDir": "$STATE/cni-node-2"
      }
    }
  ]
}
CNI
}

# The cluster's registry listens on the host (0.0.0.0:5000), and every image is named
# 127.0.0.1:5000/...: inside node-2 that loopback address is DNATed to the host's bridge address,
# so the kubelet, the runtime (containerd pulls a checkpoint's base image by its recorded name,
# outside the CRI's registry settings) and host-network pods pull as on node-1.
node2_network_inside() {
  in_node2 nft -f - <<NFT
table ip cryo_node2_registry
delete table ip cryo_node2_registry
table ip cryo_node2_registry {
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr 127.0.0.1 tcp dport $REGISTRY_PORT dnat to $NODE_IP:$REGISTRY_PORT
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 127.0.0.1 oifname "eth0" snat to $NODE2_IP
  }
}
NFT
}

# The mount namespace: make_ns's, on the same root, with node-2's own directories bound over the
# node's paths. The copy of $RUN_DIR it starts with is dropped, so that it pins neither node-1's
# namespace nor its own network namespace.
node2_make_ns() {
  (
    NS_EXTRA_MOUNTS='
      for m in '"$NODE2_MOUNTS"'; do
        src=${m%%=*}; dst=${m#*=}
        mkdir -p "$src" "$R$dst"; mount --bind "$src" "$R$dst"
      done
      mount -t tmpfs -o ro,size=4k tmpfs "$R/sys/kernel/mm/hugepages"
      umount -l '"$RUN_DIR"' 2>/dev/null || true
    '
    RUN_DIR=$NODE2_RUN_DIR
    NS=$NODE2_NS
    make_ns
  )
  in_node2 mount --make-rshared /
}

# The kubelet's cgroup root, in every hierarchy, with cpuset's cpus and mems from the top.
node2_cgroups() {
  local d
  for d in /sys/fs/cgroup/*; do
    [ -d "$d" ] && [ ! -L "$d" ] && [ "$d" != /sys/fs/cgroup/unified ] || continue
    mkdir -p "$d/$NODE2_CGROUP"
  done
  d=/sys/fs/cgroup/cpuset/$NODE2_CGROUP
  if [ -d "$d" ]; then
    [ -n "$(cat "$d/cpuset.cpus")" ] || cat /sys/fs/cgroup/cpuset/cpuset.cpus >"$d/cpuset.cpus"
    [ -n "$(cat "$d/cpuset.mems")" ] || cat /sys/fs/cgroup/cpuset/cpuset.mems >"$d/cpuset.mems"
  fi
}

# Copies node-1's runtime configuration (written by start_runtime) into node-2's own /etc: the
# same settings at the same paths. Into the directory, never replacing it (it is bound).
node2_copy_config() { # dir
  mkdir -p "$NODE2_DIR$1"
  find "$NODE2_DIR$1" -mindepth 1 -delete
  cp -a "$ROOT$1/." "$NODE2_DIR$1/"
}

node2_start_runtime() {
  case $RUNTIME in
    containerd)
      node2_copy_config /etc/containerd
      node2_start containerd-node-2 containerd --config /etc/containerd/config.toml
      ;;
    crio)
      node2_copy_config /etc/crio
      node2_start crio-node-2 "$BIN/crio" --config /etc/crio/crio.conf
      ;;
  esac
  wait_for "$RUNTIME on $NODE2_NAME" 30 in_node2 test -S "$RUNTIME_SOCKET"
}

node2_start_kubelet() {
  node2_start kubelet-node-2 "$BIN/kubelet" --config="$STATE/kubelet-node-2.yaml" --kubeconfig="$STATE/kubelet-node-2.kubeconfig" \
    --node-ip="$NODE2_IP" --hostname-override="$NODE2_NAME" --v=1
}

# One kube-proxy per node: Service rules are iptables rules, and those are per network namespace.
node2_start_kube_proxy() {
  node2_start kube-proxy-node-2 "$BIN/kube-proxy" --kubeconfig="$STATE/kube-proxy.kubeconfig" --proxy-mode=iptables \
    --hostname-override="$NODE2_NAME" --cluster-cidr="$NODE2_CLUSTER_CIDR" --nodeport-addresses="$NODE2_IP/32" \
    --iptables-localhost-nodeports=false --conntrack-max-per-core=0 \
    --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249
}

# Starts node-2 after node-1's kubelet (the control plane and the bridge are up, and
# start_runtime wrote the runtime's configuration); node2_wait_ready waits for it.
node2_up() {
  local start_time=$EPOCHREALTIME
  node2_pki
  node2_network_up
  node2_make_ns
  node2_network_inside
  node2_cgroups
  node2_start_runtime
  # node-1's kubelet configuration with node-2's serving certificate and cgroup root.
  sed -e 's/kubelet-serving\./kubelet-serving-node-2./g' "$STATE/kubelet.yaml" >"$STATE/kubelet-node-2.yaml"
  echo "cgroupRoot: /$NODE2_CGROUP" >>"$STATE/kubelet-node-2.yaml"
  node2_start_kubelet
  node2_start_kube_proxy
  log "$NODE2_NAME started in $(elapsed "$start_time")s"
}

node2_ready() {
  "${KUBECTL[@]}" get node "$NODE2_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

# As wait_node_ready, for node-2.
node2_wait_ready() { # seconds
  local i restarts=0
  for i in $(seq $(($1 * 5))); do
    if node2_ready; then return 0; fi
    if ! running kubelet-node-2; then
      if [ "$restarts" -ge 10 ]; then break; fi
      restarts=$((restarts + 1))
      log "kubelet of $NODE2_NAME exited ($(tail -n 1 "$LOG_DIR/kubelet-node-2.log" | cut -c1-240)); starting it again"
      sleep 1
      node2_start_kubelet
    fi
    sleep 0.2
  done
  {
    echo "node $NODE2_NAME conditions:"
    "${KUBECTL[@]}" get node "$NODE2_NAME" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' 2>&1 || true
    echo "kubelet-node-2 log, last 40 lines:"
    tail -n 40 "$LOG_DIR/kubelet-node-2.log" 2>&1 || true
  } >&2
  die "node $NODE2_NAME Ready did not come up in $1s (logs: $LOG_DIR/*-node-2.log)"
}

# Stops node-2's kubelet, kube-proxy and runtime and kills every container it ran, as a power
# cut would; its namespaces, veth and state directories stay.
node2_stop_all() {
  stop kube-proxy-node-2 &
  local proxy_stopping=$!
  stop kubelet-node-2
  wait "$proxy_stopping"
  if running containerd-node-2; then
    in_node2 ctr -n k8s.io tasks list -q 2>/dev/null | while read -r id; do in_node2 ctr -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
  fi
  if running crio-node-2; then
    local crictl=("$BIN/crictl" --runtime-endpoint unix:///run/crio/crio.sock --timeout 10s)
    in_node2 "${crictl[@]}" ps -q 2>/dev/null | while read -r id; do in_node2 "${crictl[@]}" stop --timeout 0 "$id" >/dev/null 2>&1 || true; done
    in_node2 "${crictl[@]}" rmp --all --force >/dev/null 2>&1 || true
  fi
  stop containerd-node-2
  stop crio-node-2
  local pid ns_inode
  if ns_inode=$(stat -L -c %i "$NODE2_NS" 2>/dev/null); then
    for pid in $(pgrep -f 'containerd-shim-runc|/usr/bin/conmon' 2>/dev/null || true); do
      if [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "mnt:[$ns_inode]" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    done
  fi
  find "/sys/fs/cgroup/pids/$NODE2_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
}

# Stops every process and container of node-2 and removes its namespaces, veth and cgroups.
# Nothing when node-2 never ran; `down` always calls it.
node2_down() {
  node2_present || return 0
  local start_time=$EPOCHREALTIME
  node2_stop_all
  if findmnt -n "$NODE2_NS" >/dev/null 2>&1; then umount "$NODE2_NS"; fi
  rm -f "$NODE2_NS"
  if mountpoint -q "$NODE2_RUN_DIR"; then umount "$NODE2_RUN_DIR"; fi
  ip link delete "$NODE2_LINK" 2>/dev/null || true
  if findmnt -n "$NODE2_NET" >/dev/null 2>&1; then umount "$NODE2_NET"; fi
  rm -f "$NODE2_NET"
  if [ -e "/proc/sys/net/ipv4/conf/$BRIDGE/forwarding" ]; then
    cat /proc/sys/net/ipv4/conf/default/forwarding >"/proc/sys/net/ipv4/conf/$BRIDGE/forwarding"
  fi
  rm -rf "$STATE/cni-node-2"
  local i
  for i in $(seq 20); do
    find /sys/fs/cgroup/*/"$NODE2_CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    compgen -G "/sys/fs/cgroup/*/$NODE2_CGROUP" >/dev/null || break
    sleep 0.1
  done
  log "$NODE2_NAME down in $(elapsed "$start_time")s"
}

# `cluster.sh reboot-node node-2`: node-2 goes through what a reboot does to a node's pods
# (the kernel and /var stay, as they do across a reboot): every container is killed with its
# kubelet and runtime, which then start again; the kubelet finds its pods' containers gone and
# starts them afresh. For the seed's kernel-update workflow (kubectl cryo drain --reboot).
# node-1 carries the control plane's host, so only node-2 reboots.
node2_reboot() {
  { node2_present && [ -e "$NODE2_NS" ]; } || die "$NODE2_NAME is not up (cluster.sh up --nodes 2)"
  local start_time=$EPOCHREALTIME
  # The runtime the cluster runs (up wrote it), not this invocation's default.
  RUNTIME=$(cat "$RUN_DIR/runtime")
  RUNTIME_SOCKET=$(runtime_socket)
  node2_stop_all
  log "$NODE2_NAME stopped: kubelet, runtime and every container"
  node2_start_runtime
  # Its socket is there before its CRI service has recovered the dead containers, and a kubelet
  # started meanwhile exits ("server is not initialized yet").
  wait_for "the CRI service of $NODE2_NAME" 60 in_node2 "$BIN/crictl" --runtime-endpoint "unix://$RUNTIME_SOCKET" --timeout 2s info
  node2_start_kubelet
  node2_start_kube_proxy
  # The Node still says Ready from before (its lease has not run out): wait for the new kubelet.
  wait_for "the kubelet of $NODE2_NAME" 60 in_node2_net curl -sf --max-time 1 -o /dev/null http://127.0.0.1:10248/healthz
  node2_wait_ready 120
  log "$NODE2_NAME rebooted in $(elapsed "$start_time")s"
}

node2_status() {
  local name
  node2_present || return 0
  for name in "${NODE2_PROCESSES[@]}"; do
    if running "$name"; then echo "$name: running (pid $(cat "$(pidfile "$name")"))"; else echo "$name: stopped"; fi
  done
}
