/**
 * The lab's network under churn: test files run in parallel and create and remove pods all the
 * time, and a pod must keep reaching servers on the host meanwhile — the upstreams, agents and
 * registries the tests run there.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lab, LabPod } from '@cryo/test';
import { LAB_BRIDGE_MAC, openLab } from '@cryo/test';

const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;

describe.skipIf(skip !== undefined)(`the lab network${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  const lab = opened as Lab;
  let pod: LabPod;
  let server: net.Server;
  const bridgeMac = async () => (JSON.parse((await lab.exec(['ip', '-j', 'link', 'show', 'dev', lab.settings.bridge])).stdout) as { address: string }[])[0].address;
  // One TCP round trip from the pod to the host, bounded: a lost packet shows as a timeout.
  const reachHost = (port: number) => pod.exec(['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${lab.hostAddress}/${port} && head -1 <&3`]);

  beforeAll(async () => {
    pod = await lab.createPod('net-churn');
    server = net.createServer((s) => s.end('hello\n'));
    await new Promise<void>((resolve) => server.listen(0, lab.hostAddress, resolve));
  });
  afterAll(async () => {
    await lab.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('keeps a pod reaching the host when the port whose MAC the bridge had leaves it', async () => {
    const { port } = server.address() as net.AddressInfo;
    // A bridge without a MAC of its own takes its ports' lowest: this one's, the lowest there is.
    const veth = 'cryo-lowmac';
    const added = await lab.exec(['ip', 'link', 'add', veth, 'address', '00:00:00:00:00:01', 'type', 'veth', 'peer', 'name', `${veth}-p`]);
    expect(added.code, added.stderr).toBe(0);
    try {
      expect((await lab.exec(['ip', 'link', 'set', veth, 'master', lab.settings.bridge, 'up'])).code).toBe(0);
      // The pod learns the gateway's MAC (its ARP cache keeps it while traffic flows).
      expect((await reachHost(port)).stdout).toBe('hello\n');
      expect(await bridgeMac()).toBe(LAB_BRIDGE_MAC);
    } finally {
      await lab.exec(['ip', 'link', 'delete', veth]);
    }
    expect(await bridgeMac()).toBe(LAB_BRIDGE_MAC);
    const again = await reachHost(port);
    expect(again.code, `the pod lost the host (exit ${again.code}): ${again.stderr}`).toBe(0);
    expect(again.stdout).toBe('hello\n');
  });

  it('forgets a removed pod’s MAC, so the pod that takes its address next is reached at once', async () => {
    // A connection to a closed port: refused at once when the packets arrive, a timeout when lost.
    const knock = (ip: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect({ host: ip, port: 1, timeout: 3_000 });
        socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
        socket.once('timeout', () => socket.destroy() && resolve('timed out'));
        socket.once('connect', () => socket.destroy() && resolve('connected'));
      });
    const first = await lab.createPod('net-reuse-a');
    expect(await knock(first.ip)).toBe('ECONNREFUSED'); // the host now maps the address to this pod's MAC
    await first.remove();
    const neighbours = (await lab.exec(['ip', 'neigh', 'show', 'to', first.ip, 'dev', lab.settings.bridge])).stdout.trim();
    expect(neighbours).toBe('');
    // Usually the same address (the lowest free one), unless another test file took it meanwhile.
    const next = await lab.createPod('net-reuse-b');
    expect(await knock(next.ip)).toBe('ECONNREFUSED');
  });
});
