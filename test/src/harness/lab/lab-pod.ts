/**
 * A lab "pod": a network namespace made inside the lab (`ip netns add`, so crun can join it by
 * path as CRI-O joins a pod sandbox's) and wired to the lab bridge with a veth pair. The host end
 * lives in the host network namespace, so the vitest process reaches pods directly and pods
 * reach servers that listen on the bridge address.
 */
import type { CommandOptions, CommandResult } from './run-command.ts';
import { parseIpv4Cidr, subnetAddress } from './ipv4.ts';

export type LabExec = (argv: string[], options?: CommandOptions) => Promise<CommandResult>;

export interface LabPod {
  name: string;
  /** The pod's address on the lab bridge. */
  ip: string;
  /** Its network namespace as crun sees it inside the lab (what a config.json names). */
  netnsPath: string;
  /** Runs a command in the lab, inside this pod's network namespace. */
  exec(argv: string[], options?: CommandOptions): Promise<CommandResult>;
  remove(): Promise<void>;
}

export interface LabNetwork {
  bridge: string;
  bridgeCidr: string;
}

const VETH_PREFIX = 'cryoh'; // + the address index: unique, and short enough for IFNAMSIZ (15)

function netnsName(pod: string): string {
  return `cryo-${pod}`;
}

function aliasOf(pod: string): string {
  return `cryo-lab:${pod}`;
}

async function checked(exec: LabExec, argv: string[], options?: CommandOptions): Promise<CommandResult> {
  const result = await exec(argv, options);
  if (result.code !== 0) throw new Error(`exit ${result.code}: ${argv.join(' ')}\n${result.stderr}${result.stdout}`.trimEnd());
  return result;
}

/**
 * The bridge's MAC, set explicitly. A Linux bridge without one takes the lowest MAC of its ports,
 * so when a test file removes the pod whose veth lent it, the bridge's MAC changes under every
 * other pod — whose ARP entry for the gateway, kept fresh by their own traffic, keeps the old one:
 * their packets to the host go nowhere for 20 s and more (measured), and connections hang
 * half-closed. Locally administered (02:…), "cryo" in ASCII.
 */
export const LAB_BRIDGE_MAC = '02:63:72:79:6f:00';

/** Makes the bridge and gives it its address and fixed MAC; idempotent, and safe when two test files race. */
export async function ensureBridge(exec: LabExec, { bridge, bridgeCidr }: LabNetwork): Promise<void> {
  parseIpv4Cidr(bridgeCidr);
  await checked(exec, [
    'sh', '-ec',
    'ip link show dev "$1" >/dev/null 2>&1 || ip link add "$1" address "$3" type bridge 2>/dev/null || ip link show dev "$1" >/dev/null\n' +
      'ip link show dev "$1" | grep -q "link/ether $3 " || ip link set dev "$1" address "$3"\n' +
      'ip addr replace "$2" dev "$1"\n' +
      'ip link set "$1" up',
    'sh', bridge, bridgeCidr, LAB_BRIDGE_MAC,
  ]);
}

interface IpLink {
  ifname: string;
  ifalias?: string;
}

/** Removes what a crashed run left under this pod name: its network namespace and veth. */
async function removeLeftovers(exec: LabExec, name: string, links: IpLink[]): Promise<void> {
  await exec(['ip', 'netns', 'delete', netnsName(name)]);
  for (const link of links.filter((l) => l.ifalias === aliasOf(name))) {
    await exec(['ip', 'link', 'delete', link.ifname]);
  }
}

/** Creates pod `name` with the next free address; a same-named pod a crashed run left is removed first. */
export async function createPod(exec: LabExec, network: LabNetwork, name: string): Promise<LabPod> {
  if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(name)) throw new Error(`pod name must be lowercase letters, digits and dashes: ${name}`);
  const cidr = parseIpv4Cidr(network.bridgeCidr);
  const links = JSON.parse((await checked(exec, ['ip', '-j', 'link', 'show'])).stdout) as IpLink[];
  await removeLeftovers(exec, name, links);
  const taken = new Set(links.map((l) => l.ifname));
  // Candidates "index:address"; the shell takes the first whose veth name is still free, so two
  // test files creating pods at once never get the same address (`ip link add` is atomic).
  const candidates: string[] = [];
  for (let index = 1; candidates.length < 64; index++) {
    const address = subnetAddress(cidr, index);
    if (address === undefined) break;
    if (address !== cidr.address && !taken.has(`${VETH_PREFIX}${index}`)) candidates.push(`${index}:${address}`);
  }
  const ns = netnsName(name);
  const script = `
ns=$1 bridge=$2 gateway=$3 prefix=$4 alias=$5 vprefix=$6; shift 6
ip netns add "$ns"
for candidate in "$@"; do
  n=\${candidate%%:*} address=\${candidate#*:}
  if out=$(ip link add "$vprefix$n" type veth peer name eth0 netns "$ns" 2>&1); then
    ip link set dev "$vprefix$n" alias "$alias"
    ip link set dev "$vprefix$n" master "$bridge" up
    ip -n "$ns" addr add "$address/$prefix" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$gateway"
    # The host may still map this address to the MAC of the pod that had it before.
    ip neigh flush to "$address" dev "$bridge"
    echo "$n $address"
    exit 0
  fi
  case $out in *"File exists"*) continue ;; esac
  echo "$out" >&2
  ip netns delete "$ns"
  exit 1
done
echo "no free address left on $bridge" >&2
ip netns delete "$ns"
exit 1`;
  const made = await checked(exec, ['sh', '-ec', script, 'sh', ns, network.bridge, cidr.address, String(cidr.prefix), aliasOf(name), VETH_PREFIX, ...candidates]);
  const [index, ip] = made.stdout.trim().split(' ');
  const veth = `${VETH_PREFIX}${index}`;
  let removed = false;
  return {
    name,
    ip,
    netnsPath: `/run/netns/${ns}`,
    exec: (argv, options) => exec(['ip', 'netns', 'exec', ns, ...argv], options),
    remove: async () => {
      if (removed) return;
      removed = true;
      // Deleting the host end destroys the pair even if a process still holds the namespace.
      await exec(['ip', 'link', 'delete', veth]);
      await exec(['ip', 'netns', 'delete', ns]);
      // Else the host keeps this pod's MAC for the address (traffic of the next pod to take it
      // even keeps the entry confirmed), and cannot reach that pod for 20 s and more.
      await exec(['ip', 'neigh', 'flush', 'to', ip, 'dev', network.bridge]);
    },
  };
}
