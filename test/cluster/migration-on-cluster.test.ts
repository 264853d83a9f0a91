/**
 * Migrations on a real Kubernetes node (scripts/cluster/cluster.sh): Cryo installed from its
 * manifests, the controller as its Deployment of two (one leading through its Lease), the webhook
 * restoring the replacement a ReplicaSet creates (migrate.cryo.dev), the node agent taking the
 * Migration's Checkpoint through the kubelet, the runtime and CRIU.
 *
 * The cluster has one node, so each Migration names that node as its target ("restart with
 * state") or restarts in place: the pod is checkpointed, evicted and comes back from the
 * checkpoint, carrying on from its state. The app is the hook SDK service of the other cluster
 * tests (test/criu/fixtures/hooked-service.ts): the original is told "superseded", the copy
 * "restored". A PodDisruptionBudget holds the eviction until the test has seen the original
 * superseded (its SDK says so on stderr), which also shows the controller waiting it out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_RUNTIMES, hookedAppState, openCluster, podReady, startHookedAppCluster, waitFor, type Cluster, type LineEchoUpstream } from '@cryo/test';

const NS = 'cryo-migrate';

interface Pod {
  metadata: { name: string; uid: string; annotations?: Record<string, string>; ownerReferences?: { kind: string; name: string; uid: string }[] };
  spec: { nodeName?: string; containers: { image: string }[]; affinity?: unknown };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}
interface MigrationObject {
  metadata: { name: string; uid: string };
  status?: {
    phase?: string;
    message?: string;
    sourceNodeName?: string;
    sourceOwner?: { kind: string; name: string; uid: string };
    checkpointName?: string;
    targetPodName?: string;
    targetNodeName?: string;
    downtimeSeconds?: number;
  };
}

describe.each(CLUSTER_RUNTIMES)('Migrations on a real node (%s)', (runtime) => {
  const opened = openCluster(runtime);
  describe.skipIf('skip' in opened)('installed from its manifests', () => {
    const cluster = opened as Cluster;
    const node = 'node-1';
    let upstream: LineEchoUpstream;
    let image: string;
    let done: (() => Promise<void>) | undefined;

    const appSpec = () => ({
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
    const hooks = { 'cryo.dev/hooks': 'enabled' };
    const getPod = (name: string) => cluster.get<Pod>(['-n', NS, 'pod', name]);
    const readyPods = (selector: string, count: number): Promise<Pod[]> =>
      waitFor(
        async () => {
          const { items } = await cluster.get<{ items: Pod[] }>(['-n', NS, 'pods', '-l', selector]);
          return items.length === count && items.every(podReady) ? items : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 500, what: `${count} Ready pod(s) ${selector}` },
      );
    const migration = (name: string) => cluster.get<MigrationObject>(['-n', NS, 'migration', name]);
    const inPhase = (name: string, phase: string, timeoutMs = 180_000): Promise<MigrationObject> =>
      waitFor(
        async () => {
          const m = await migration(name);
          if (m.status?.phase === 'Failed' && phase !== 'Failed') throw new Error(`Migration ${name} failed: ${m.status.message}`);
          return m.status?.phase === phase ? m : undefined;
        },
        { timeoutMs, intervalMs: 250, what: `Migration ${name} ${phase}` },
      );
    const budget = (name: string, app: string) => ({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name, namespace: NS },
      spec: { minAvailable: 1, selector: { matchLabels: { app } } },
    });
    /** The original was told superseded (its SDK says so on stderr) while the budget holds its eviction. */
    const supersededWhileHeld = async (name: string, pod: string): Promise<void> => {
      const held = await waitFor(
        async () => {
          const m = await migration(name);
          if (m.status?.phase === 'Failed') throw new Error(`Migration ${name} failed: ${m.status.message}`);
          return m.status?.phase === 'StoppingSource' && m.status.message?.includes('PodDisruptionBudget') ? m : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 250, what: `Migration ${name} held by the budget` },
      );
      expect(held.status!.message).toMatch(/^evicting pod \S+: refused \(.*disruption budget.*\), most likely by a PodDisruptionBudget; retrying with backoff for up to 10m$/);
      const logs = await waitFor(
        async () => {
          const out = await cluster.kubectl(['-n', NS, 'logs', pod]);
          return out.includes('superseded') ? out : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500, what: `${pod} to be told superseded` },
      );
      expect(logs).toMatch(/cryo-hooks info: superseded: a copy carries on from this checkpoint elsewhere; staying quiet until stopped/);
      // Still there, and never told restored.
      expect((await getPod(pod)).metadata.name).toBe(pod);
      expect(logs).not.toMatch(/outcome restored/);
    };
    const eventReasons = async (name: string): Promise<string[]> => {
      const { items } = await cluster.get<{ items: { reason: string; type: string; metadata: { creationTimestamp: string } }[] }>(
        ['-n', NS, 'events.events.k8s.io', '--field-selector', `regarding.kind=Migration,regarding.name=${name}`],
      );
      return items.map((e) => e.reason);
    };

    beforeAll(async () => {
      ({ image, upstream, done } = await startHookedAppCluster(cluster, NS));
    }, 900_000);

    afterAll(async () => {
      await cluster.kubectl(['uncordon', node]).catch(() => {});
      await done?.();
    }, 180_000);

    it('runs two controller replicas, one of which holds the Lease', async () => {
      const { items } = await cluster.get<{ items: Pod[] }>(['-n', 'cryo-system', 'pods', '-l', 'app.kubernetes.io/name=cryo-controller']);
      expect(items).toHaveLength(2);
      expect(items.every(podReady)).toBe(true);
      const lease = await waitFor(
        async () => {
          const l = await cluster.get<{ spec: { holderIdentity?: string; leaseDurationSeconds: number } }>(['-n', 'cryo-system', 'lease', 'cryo-controller']);
          return l.spec.holderIdentity ? l : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500, what: 'a leader' },
      );
      expect(lease.spec.leaseDurationSeconds).toBe(15);
      expect(items.filter((p) => lease.spec.holderIdentity!.startsWith(`${p.metadata.name}_`))).toHaveLength(1);
    });

    it('refuses a Migration that cannot work, saying why, and does nothing', async () => {
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'nothing', namespace: NS }, spec: { podName: 'no-such-pod', targetNodeName: node } });
      const failed = await inPhase('nothing', 'Failed', 60_000);
      expect(failed.status!.message).toBe(`pod ${NS}/no-such-pod does not exist; name a running pod in spec.podName; nothing was done`);
      expect(await eventReasons('nothing')).toEqual(['MigrationRefused']);
      // The CRD refuses what the controller would refuse too, before it is stored.
      const both = await cluster.kubectlResult(['apply', '-f', '-'], {
        input: JSON.stringify({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'both', namespace: NS }, spec: { podName: 'x', targetNodeName: node, restartInPlace: true } }),
      });
      expect(both.code).not.toBe(0);
      expect(both.stderr).toContain('restartInPlace brings the pod back onto its own node; leave targetNodeName out');
    });

    it('restarts a bare pod with its state: the original told "superseded", the copy "restored", carrying on under its name', async () => {
      await cluster.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'solo', namespace: NS, labels: { app: 'solo' }, annotations: hooks }, spec: appSpec() });
      const [original] = await readyPods('app=solo', 1);
      await waitFor(async () => (await hookedAppState(original)).events.some((e) => e.startsWith('connected')), { timeoutMs: 30_000, intervalMs: 250, what: 'the app to connect to its agent' });
      await fetch(`http://${original.status.podIP}:8080/value?v=42`, { method: 'POST' });
      await cluster.apply(budget('solo', 'solo'));

      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'solo-again', namespace: NS }, spec: { podName: 'solo', targetNodeName: node, reason: 'e2e' } });
      await supersededWhileHeld('solo-again', 'solo');
      await cluster.kubectl(['-n', NS, 'delete', 'pdb', 'solo']);

      const done = await inPhase('solo-again', 'Succeeded');
      expect(done.status).toMatchObject({ targetPodName: 'solo', targetNodeName: node, sourceNodeName: node });
      expect(done.status!.sourceOwner).toBeUndefined();
      expect(done.status!.downtimeSeconds).toBeGreaterThan(0);
      expect(done.status!.downtimeSeconds).toBeLessThan(60);
      console.log(`bare pod (${runtime}): downtime ${done.status!.downtimeSeconds} s`);
      const copy = await getPod('solo');
      expect(copy.metadata.uid).not.toBe(original.metadata.uid);
      expect(copy.metadata.annotations?.['cryo.dev/restore-from']).toBe(done.status!.checkpointName);
      expect(JSON.stringify(copy.spec.affinity)).toContain(`{"key":"metadata.name","operator":"In","values":["${node}"]}`);
      const state = await waitFor(async () => { const s = await hookedAppState(copy); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the copy to be told restored' });
      expect(state).toMatchObject({ value: 42, restoreCount: 1 });
      // The Checkpoint the Migration took says what it was for, and the Migration owns it.
      const checkpoint = await cluster.get<{ spec: { purpose: string; podName: string }; metadata: { ownerReferences: { kind: string; name: string }[] } }>(['-n', NS, 'checkpoint', done.status!.checkpointName!]);
      expect(checkpoint.spec).toMatchObject({ purpose: 'Migration', podName: 'solo' });
      expect(checkpoint.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Migration', name: 'solo-again' })]);
      expect(await eventReasons('solo-again')).toEqual(expect.arrayContaining(['Checkpointing', 'CheckpointSucceeded', 'EvictionBlocked', 'SourceEvicted', 'PodRecreated', 'Succeeded']));
      expect(await cluster.kubectl(['-n', NS, 'get', 'migration', 'solo-again'])).toMatch(new RegExp(`solo-again\\s+solo\\s+Succeeded\\s+${node}`));
    });

    it("moves a Deployment's pod: its ReplicaSet's replacement is restored by the webhook and carries on", async () => {
      await cluster.apply({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: NS },
        spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' }, annotations: hooks }, spec: appSpec() } },
      });
      const [original] = await readyPods('app=web', 1);
      await waitFor(async () => (await hookedAppState(original)).events.some((e) => e.startsWith('connected')), { timeoutMs: 30_000, intervalMs: 250, what: 'the app to connect to its agent' });
      await fetch(`http://${original.status.podIP}:8080/value?v=7`, { method: 'POST' });
      await cluster.apply(budget('web', 'web'));

      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'web-again', namespace: NS }, spec: { podName: original.metadata.name, targetNodeName: node } });
      await supersededWhileHeld('web-again', original.metadata.name);
      await cluster.kubectl(['-n', NS, 'delete', 'pdb', 'web']);

      const done = await inPhase('web-again', 'Succeeded');
      const owner = original.metadata.ownerReferences![0];
      expect(done.status!.sourceOwner).toEqual({ kind: 'ReplicaSet', name: owner.name, uid: owner.uid });
      expect(done.status!.targetPodName).not.toBe(original.metadata.name);
      console.log(`Deployment pod (${runtime}): downtime ${done.status!.downtimeSeconds} s`);
      const [copy] = await readyPods('app=web', 1);
      expect(copy.metadata.name).toBe(done.status!.targetPodName);
      expect(copy.metadata.ownerReferences![0].uid).toBe(owner.uid);
      expect(copy.metadata.annotations?.['cryo.dev/restore-from']).toBe(done.status!.checkpointName);
      expect(copy.metadata.annotations?.['cryo.dev/restored-checkpoint-uid']).toBeDefined();
      expect(JSON.stringify(copy.spec.affinity)).toContain(`{"key":"metadata.name","operator":"In","values":["${node}"]}`);
      const state = await waitFor(async () => { const s = await hookedAppState(copy); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the copy to be told restored' });
      expect(state).toMatchObject({ value: 7, restoreCount: 1 });
      expect(await eventReasons('web-again')).toEqual(expect.arrayContaining(['Checkpointing', 'CheckpointSucceeded', 'SourceEvicted', 'ReplacementRestoring', 'Succeeded']));
    });

    it('restarts in place: after the eviction it waits for the cordoned node, and restores there once it is uncordoned', async () => {
      await cluster.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'rebooted', namespace: NS, labels: { app: 'rebooted' }, annotations: hooks }, spec: appSpec() });
      const [original] = await readyPods('app=rebooted', 1);
      await waitFor(async () => (await hookedAppState(original)).events.some((e) => e.startsWith('connected')), { timeoutMs: 30_000, intervalMs: 250, what: 'the app to connect to its agent' });
      await fetch(`http://${original.status.podIP}:8080/value?v=99`, { method: 'POST' });
      await cluster.kubectl(['cordon', node]);
      try {
        await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'reboot', namespace: NS }, spec: { podName: 'rebooted', restartInPlace: true, reason: 'kernel upgrade' } });
        const waiting = await inPhase('reboot', 'WaitingForNode');
        await waitFor(async () => (await migration('reboot')).status?.message?.includes('is cordoned'), { timeoutMs: 30_000, intervalMs: 250, what: 'the reason to wait' });
        expect(waiting.status!.targetNodeName).toBe(node);
        // Evicted, and not back while the node is cordoned.
        await waitFor(async () => (await cluster.kubectlResult(['-n', NS, 'get', 'pod', 'rebooted'])).code !== 0, { timeoutMs: 60_000, intervalMs: 250, what: 'the original gone' });
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        expect((await migration('reboot')).status!.phase).toBe('WaitingForNode');
        expect((await cluster.kubectlResult(['-n', NS, 'get', 'pod', 'rebooted'])).code).not.toBe(0);
      } finally {
        await cluster.kubectl(['uncordon', node]);
      }
      const done = await inPhase('reboot', 'Succeeded');
      expect(done.status).toMatchObject({ targetPodName: 'rebooted', targetNodeName: node });
      const copy = await getPod('rebooted');
      const state = await waitFor(async () => { const s = await hookedAppState(copy); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the copy to be told restored' });
      expect(state).toMatchObject({ value: 99, restoreCount: 1 });
      expect(await eventReasons('reboot')).toContain('NodeReady');
    });

    it('keeps each controller replica within its memory limit after these Migrations', async () => {
      const { items } = await cluster.get<{ items: Pod[] }>(['-n', 'cryo-system', 'pods', '-l', 'app.kubernetes.io/name=cryo-controller']);
      for (const pod of items) {
        // Through the apiserver's proxy to the pod: the process's own RSS (process metrics).
        const metrics = await cluster.kubectl(['get', '--raw', `/api/v1/namespaces/cryo-system/pods/${pod.metadata.name}:8080/proxy/metrics`]);
        const rss = Number(/^cryo_process_resident_memory_bytes (\d+)/m.exec(metrics)![1]) / 2 ** 20;
        const leading = /^cryo_controller_leader 1$/m.test(metrics);
        console.log(`controller ${pod.metadata.name} (${leading ? 'leader' : 'follower'}, ${runtime}): RSS ${rss.toFixed(1)} MiB`);
        expect(rss).toBeLessThan(384);
      }
    });
  });
});

// Two nodes on this machine (scripts/cluster/second-node.sh; containerd only, as test/cluster/two-nodes.test.ts):
// "another node" is another kubelet and runtime state, sharing the kernel. The copy is restored by
// node-2's runtime from the registry, from images node-2 pulls itself.
describe('Migrations between two nodes (containerd)', () => {
  const opened = openCluster('containerd', { nodes: 2 });
  describe.skipIf('skip' in opened)('node-1 and node-2', () => {
    const cluster = opened as Cluster;
    let upstream: LineEchoUpstream;
    let image: string;
    let done: (() => Promise<void>) | undefined;
    const appContainer = () => ({
      name: 'app',
      image,
      env: Object.entries({ PORT: '8080', UPSTREAM: upstream.address }).map(([name, value]) => ({ name, value })),
      ports: [{ containerPort: 8080 }],
      readinessProbe: { httpGet: { path: '/state', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
      securityContext: { allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } },
    });
    const readyPods = (selector: string, count: number): Promise<Pod[]> =>
      waitFor(
        async () => {
          const { items } = await cluster.get<{ items: Pod[] }>(['-n', NS, 'pods', '-l', selector]);
          return items.length === count && items.every(podReady) ? items : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 500, what: `${count} Ready pod(s) ${selector}` },
      );
    const finished = (name: string): Promise<MigrationObject> =>
      waitFor(
        async () => {
          const m = await cluster.get<MigrationObject>(['-n', NS, 'migration', name]);
          return m.status?.phase === 'Succeeded' || m.status?.phase === 'Failed' ? m : undefined;
        },
        { timeoutMs: 240_000, intervalMs: 250, what: `Migration ${name} to finish` },
      );
    const connected = (pod: Pod) => waitFor(async () => (await hookedAppState(pod)).events.some((e) => e.startsWith('connected')), { timeoutMs: 30_000, intervalMs: 250, what: `${pod.metadata.name} to connect to its agent` });

    beforeAll(async () => {
      ({ image, upstream, done } = await startHookedAppCluster(cluster, NS));
    }, 1_200_000);

    afterAll(async () => {
      await done?.();
    }, 180_000);

    it('moves a bare pod from node-1 to node-2: the copy carries on there from its state, told "restored"', async () => {
      await cluster.apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'traveller', namespace: NS, labels: { app: 'traveller' }, annotations: { 'cryo.dev/hooks': 'enabled' } },
        spec: { nodeName: 'node-1', terminationGracePeriodSeconds: 1, containers: [appContainer()] },
      });
      const [original] = await readyPods('app=traveller', 1);
      await connected(original);
      await fetch(`http://${original.status.podIP}:8080/value?v=12`, { method: 'POST' });
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'to-node-2', namespace: NS }, spec: { podName: 'traveller', targetNodeName: 'node-2' } });
      const done = await finished('to-node-2');
      expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded', sourceNodeName: 'node-1', targetNodeName: 'node-2', targetPodName: 'traveller' });
      console.log(`bare pod node-1 → node-2: downtime ${done.status!.downtimeSeconds} s`);
      const [copy] = await readyPods('app=traveller', 1);
      expect(copy.spec.nodeName).toBe('node-2');
      const state = await waitFor(async () => { const s = await hookedAppState(copy); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the copy to be told restored' });
      expect(state).toMatchObject({ value: 12, restoreCount: 1 });
    });

    it("moves a Deployment's pod to the other node when the Migration names none", async () => {
      await cluster.apply({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'roamer', namespace: NS },
        spec: { replicas: 1, selector: { matchLabels: { app: 'roamer' } }, template: { metadata: { labels: { app: 'roamer' }, annotations: { 'cryo.dev/hooks': 'enabled' } }, spec: { terminationGracePeriodSeconds: 1, containers: [appContainer()] } } },
      });
      const [original] = await readyPods('app=roamer', 1);
      await connected(original);
      await fetch(`http://${original.status.podIP}:8080/value?v=21`, { method: 'POST' });
      const from = original.spec.nodeName!;
      const other = from === 'node-1' ? 'node-2' : 'node-1';
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'elsewhere', namespace: NS }, spec: { podName: original.metadata.name } });
      const done = await finished('elsewhere');
      expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded', sourceNodeName: from, targetNodeName: other });
      console.log(`Deployment pod ${from} → ${other}: downtime ${done.status!.downtimeSeconds} s`);
      const [copy] = await readyPods('app=roamer', 1);
      expect(copy.metadata.name).toBe(done.status!.targetPodName);
      expect(copy.spec.nodeName).toBe(other);
      expect(JSON.stringify(copy.spec.affinity)).toContain(`{"key":"metadata.name","operator":"NotIn","values":["${from}"]}`);
      const state = await waitFor(async () => { const s = await hookedAppState(copy); return s.lastOutcome === 'restored' ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: 'the copy to be told restored' });
      expect(state).toMatchObject({ value: 21, restoreCount: 1 });
    });

    it('refuses to move a pod with a hostPath volume, or one its nodeSelector keeps on its node, to the other node', async () => {
      const busybox = `${cluster.settings.registry}/cryo-test/busybox:1`;
      const sleeper = (name: string, spec: object) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: NS, labels: { app: name } },
        spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'sleep', image: busybox, command: ['/bin/sh', '-c', 'exec sleep 3600'], volumeMounts: [] as object[] }], ...spec },
      });
      const withHostPath = sleeper('with-host-path', { nodeName: 'node-1', volumes: [{ name: 'data', hostPath: { path: '/tmp', type: 'Directory' } }] });
      withHostPath.spec.containers[0].volumeMounts = [{ name: 'data', mountPath: '/data' }];
      await cluster.apply(withHostPath, sleeper('pinned', { nodeSelector: { 'kubernetes.io/hostname': 'node-1' } }));
      await readyPods('app=with-host-path', 1);
      await readyPods('app=pinned', 1);
      await cluster.apply(
        { apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'host-path', namespace: NS }, spec: { podName: 'with-host-path', targetNodeName: 'node-2' } },
        { apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name: 'pinned', namespace: NS }, spec: { podName: 'pinned', targetNodeName: 'node-2' } },
      );
      expect((await finished('host-path')).status!.message).toBe(
        'pod with-host-path cannot move to node node-2: volume "data" is the hostPath /tmp of node node-1: its files do not move to another node (migrate with targetNodeName: node-1 to restart with state, or use a network volume); nothing was done',
      );
      expect((await finished('pinned')).status!.message).toBe("the pod cannot run on the target: node node-2 lacks the pod's nodeSelector kubernetes.io/hostname=node-1; nothing was done");
    });
  });
});
