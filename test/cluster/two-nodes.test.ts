/**
 * Two Kubernetes nodes on this one machine (scripts/cluster/second-node.sh, docs/cluster.md): node-1
 * as the other cluster tests have it, and node-2 with its own kubelet, runtime, kube-proxy, network
 * namespace (node IP 10.87.0.1, pods in 10.87.0.0/16), mount namespace and cgroup root. Cryo is
 * installed from its manifests, so the node agent runs on both from one DaemonSet.
 *
 * "Cross-node" here is cross-kubelet and cross-runtime-state: the nodes share one kernel. A pod
 * checkpointed on node-1 goes through the registry and is restored on node-2 by node-2's kubelet
 * and runtime, from images node-2 pulls itself; and back again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_RUNTIMES, hookedAppState, openCluster, podReady, startHookedAppCluster, waitFor, type Cluster, type LineEchoUpstream } from '@cryo/test';

const NS = 'cryo-two-nodes';

interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string; containers: { image: string }[] };
  status: {
    podIP?: string;
    hostIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { state: { waiting?: { reason?: string; message?: string } } }[];
  };
}
interface Node {
  metadata: { name: string; labels: Record<string, string> };
  status: { addresses: { type: string; address: string }[]; conditions: { type: string; status: string }[] };
}
interface CheckpointObject {
  status?: { phase?: string; message?: string; nodeName?: string; containers?: { name: string; referenceType: string; restoreReference: string }[] };
}

describe.each(CLUSTER_RUNTIMES)('two nodes on this machine (%s)', (runtime) => {
  const opened = openCluster(runtime, { nodes: 2 });
  describe.skipIf('skip' in opened)('node-1 and node-2', () => {
    const cluster = opened as Cluster;
    // The label value the agent gives a node of this runtime (cryo.dev/restore-runtime).
    const restoreRuntime = { containerd: 'containerd', crio: 'cri-o' }[runtime];
    const nodeIp = cluster.settings?.nodeIp;
    const second = cluster.settings?.secondNode;
    const busybox = `${cluster.settings?.registry}/cryo-test/busybox:1`;
    let upstream: LineEchoUpstream;
    let image: string;
    let done: (() => Promise<void>) | undefined;

    const onNode = (node: string) => ({ nodeSelector: { 'kubernetes.io/hostname': node } });
    const pod = (name: string, annotations: Record<string, string>, spec: object) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, annotations }, spec });
    const appSpec = (node: string) => ({
      ...onNode(node),
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image,
          env: Object.entries({ PORT: '8080', UPSTREAM: upstream.address }).map(([name, value]) => ({ name, value })),
          ports: [{ containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/state', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
          securityContext: { allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } },
        },
      ],
    });
    // busybox's httpd answering "hello from <node>" on 8080.
    const webSpec = (node: string) => ({
      ...onNode(node),
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'web', image: busybox, command: ['/bin/sh', '-c', `mkdir -p /www && echo hello from ${node} >/www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www`] }],
    });
    const readyPod = (name: string): Promise<Pod> =>
      waitFor(async () => { const p = await cluster.get<Pod>(['-n', NS, 'pod', name]); return podReady(p) ? p : undefined; }, { timeoutMs: 90_000, intervalMs: 500, what: `pod ${name} Ready` });
    const inPod = (name: string, ...argv: string[]) => cluster.kubectlResult(['-n', NS, 'exec', name, '--', '/bin/busybox', ...argv], { input: '' });
    const checkpoint = async (name: string, podName: string): Promise<CheckpointObject> => {
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: NS }, spec: { podName, reason: 'two nodes' } });
      return waitFor(
        async () => {
          const c = await cluster.get<CheckpointObject>(['-n', NS, 'checkpoint', name]);
          return c.status?.phase === 'Succeeded' || c.status?.phase === 'Failed' ? c : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250, what: `Checkpoint ${name} to finish` },
      );
    };
    const toldRestored = (p: Pod, restoreCount: number) =>
      waitFor(async () => { const s = await hookedAppState(p); return s.lastOutcome === 'restored' && s.restoreCount === restoreCount ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: `${p.metadata.name} to be told restored` });

    beforeAll(async () => {
      ({ image, upstream, done } = await startHookedAppCluster(cluster, NS));
    }, 1_200_000);

    afterAll(async () => {
      await done?.();
    }, 180_000);

    it('has both nodes Ready, each with its own node IP', async () => {
      const { items } = await cluster.get<{ items: Node[] }>(['nodes']);
      const byName = Object.fromEntries(items.map((n) => [n.metadata.name, n]));
      expect(Object.keys(byName).sort()).toEqual(['node-1', second.name]);
      for (const [name, ip] of [['node-1', nodeIp], [second.name, second.ip]]) {
        expect(byName[name].status.conditions.find((c) => c.type === 'Ready')?.status, name).toBe('True');
        expect(byName[name].status.addresses.find((a) => a.type === 'InternalIP')?.address).toBe(ip);
      }
    });

    it("runs a pod on each node, in that node's pod range; they reach each other, both node IPs and this host, and nothing else", async () => {
      await cluster.apply(pod('web-1', {}, webSpec('node-1')), pod('web-2', {}, webSpec(second.name)));
      const [web1, web2] = [await readyPod('web-1'), await readyPod('web-2')];
      expect(web1.spec.nodeName).toBe('node-1');
      expect(web1.status.podIP).toMatch(/^10\.86\./);
      expect(web2.spec.nodeName).toBe(second.name);
      expect(web2.status.podIP).toMatch(/^10\.87\./);
      expect(web2.status.hostIP).toBe(second.ip);

      // Pod to pod, both ways, by pod IP.
      const get = async (from: string, url: string) => {
        const result = await inPod(from, 'wget', '-q', '-T', '5', '-O', '-', '--no-check-certificate', url);
        return `${result.stdout}${result.stderr}`.trim();
      };
      expect(await get('web-1', `http://${web2.status.podIP}:8080/`)).toBe(`hello from ${second.name}`);
      expect(await get('web-2', `http://${web1.status.podIP}:8080/`)).toBe('hello from node-1');
      // Each node's node agent (host network) on the other node's IP, and the other kubelet and apiserver.
      expect(await get('web-1', `http://${second.ip}:8081/healthz`)).toBe('ok');
      expect(await get('web-2', `http://${nodeIp}:8081/healthz`)).toBe('ok');
      expect(await get('web-1', `https://${second.ip}:10250/healthz`)).toContain('401 Unauthorized');
      expect(await get('web-2', `https://${nodeIp}:6443/livez`)).toBe('ok');
      // node-2's pods reach Services through node-2's own kube-proxy.
      expect(await get('web-2', 'https://10.96.0.1/livez')).toBe('ok');
      // This host (the test) reaches node-2's pods.
      expect(await (await fetch(`http://${web2.status.podIP}:8080/`, { signal: AbortSignal.timeout(5_000) })).text()).toBe(`hello from ${second.name}\n`);

      // node-2's way out is the host's guard: an outside address gets nowhere, and is counted.
      const before = await cluster.guardCounters();
      const outside = await inPod('web-2', 'nc', '-w', '2', '203.0.113.1', '80');
      expect(outside.code).not.toBe(0);
      expect(outside.stderr).toMatch(/nc: (timed out|can't connect)/);
      const after = await cluster.guardCounters();
      expect(after.pod_egress_dropped).toBeGreaterThan(before.pod_egress_dropped ?? 0);
      expect(after.escaped).toBe(before.escaped);
      // Inside node-2, the only routes lead to the host: its bridge, and the veth.
      const routes = await cluster.execOn(second.name, ['ip', 'route']);
      expect(routes.stdout).toMatch(new RegExp(`^default via \\S+ dev eth0 src ${second.ip.replaceAll('.', '\\.')}`, 'm'));
    }, 120_000);

    it('runs the node agent on both nodes from the one DaemonSet; each labels its node', async () => {
      const ds = await cluster.get<{ status: { desiredNumberScheduled: number; numberReady: number } }>(['-n', 'cryo-node', 'daemonset', 'cryo-node-agent']);
      expect(ds.status).toMatchObject({ desiredNumberScheduled: 2, numberReady: 2 });
      const agents = await cluster.get<{ items: Pod[] }>(['-n', 'cryo-node', 'pods', '-l', 'app.kubernetes.io/name=cryo-node-agent']);
      expect(agents.items.map((p) => p.spec.nodeName).sort()).toEqual(['node-1', second.name]);
      expect(agents.items.every(podReady)).toBe(true);
      for (const node of ['node-1', second.name]) {
        await waitFor(async () => (await cluster.get<Node>(['node', node])).metadata.labels['cryo.dev/restore-runtime'] === restoreRuntime,
          { timeoutMs: 30_000, intervalMs: 250, what: `${node} labelled cryo.dev/restore-runtime=${restoreRuntime}` });
      }
    });

    it('checkpoints a pod on node-1 into the registry and restores it on node-2, where it carries on from its state; and back', async () => {
      await cluster.apply(pod('source', { 'cryo.dev/hooks': 'enabled' }, appSpec('node-1')));
      const source = await readyPod('source');
      await waitFor(async () => (await hookedAppState(source)).events.some((e) => e.startsWith('connected')), { timeoutMs: 30_000, intervalMs: 250, what: 'the app to connect to its agent' });
      await fetch(`http://${source.status.podIP}:8080/value?v=42`, { method: 'POST' });

      const there = await checkpoint('source-1', 'source');
      expect(there.status, there.status?.message).toMatchObject({ phase: 'Succeeded', nodeName: 'node-1' });
      expect(there.status!.containers![0]).toMatchObject({ name: 'app', referenceType: 'image' });
      expect(there.status!.containers![0].restoreReference.startsWith(`${cluster.settings.registryForPods}/`)).toBe(true);
      expect(await waitFor(async () => { const s = await hookedAppState(source); return s.lastOutcome !== null ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the outcome' }))
        .toMatchObject({ lastOutcome: 'resumed', value: 42, restoreCount: 0 });

      // node-2's kubelet pulls the checkpoint image, its runtime restores, its agent tells the app.
      await cluster.apply(pod('moved', { 'cryo.dev/restore-from': 'source-1' }, appSpec(second.name)));
      if (runtime === 'crio') {
        // CRI-O restores only onto a base image already on the node: it never pulls the one the
        // checkpoint names (containerd does). Until then the kubelet retries CreateContainer.
        const waiting = await waitFor(async () => (await cluster.get<Pod>(['-n', NS, 'pod', 'moved'])).status.containerStatuses?.[0]?.state.waiting?.message?.includes('image not known') || undefined,
          { timeoutMs: 60_000, intervalMs: 500, what: 'CRI-O on node-2 to miss the base image' });
        expect(waiting).toBe(true);
        await cluster.apply(pod('base-image-on-node-2', {}, { ...onNode(second.name), terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image, command: ['/bin/sh', '-c', 'exec sleep 3600'] }] }));
        await readyPod('base-image-on-node-2');
      }
      const moved = await readyPod('moved');
      expect(moved.spec.nodeName).toBe(second.name);
      expect(moved.status.podIP).toMatch(/^10\.87\./);
      expect(moved.spec.containers[0].image).toMatch(new RegExp(`/cryo/checkpoints/cryo-checkpoints/${NS}@sha256:`));
      // (hostname: the checkpointed pod's, "source": with containerd and runc, CRIU restores the
      // UTS namespace it dumped; /etc/hostname is the new pod's. The same on one node.)
      expect(await toldRestored(moved, 1)).toMatchObject({ value: 42 });
      // It talks to its upstream on the host again, from node-2.
      const answer = (await (await fetch(`http://${moved.status.podIP}:8080/upstream`, { signal: AbortSignal.timeout(5_000) })).json()) as { answer: string };
      expect(answer.answer).toBe('pong 42');
      // The original runs on, on node-1.
      expect((await hookedAppState(source)).value).toBe(42);

      // And back: node-2's agent checkpoints through node-2's kubelet, node-1 restores.
      await fetch(`http://${moved.status.podIP}:8080/value?v=43`, { method: 'POST' });
      const back = await checkpoint('moved-1', 'moved');
      expect(back.status, back.status?.message).toMatchObject({ phase: 'Succeeded', nodeName: second.name });
      await cluster.apply(pod('returned', { 'cryo.dev/restore-from': 'moved-1' }, appSpec('node-1')));
      const returned = await readyPod('returned');
      expect(returned.spec.nodeName).toBe('node-1');
      expect(await toldRestored(returned, 2)).toMatchObject({ value: 43 });
    }, 360_000);
  });
});
