/**
 * The seed's workflows as a user runs them, with `kubectl cryo` (found by kubectl on PATH, as after
 * `npm i -g`), on the two real nodes of scripts/cluster/cluster.sh (node-2: second-node.sh; containerd,
 * as test/cluster/migration-on-cluster.test.ts's cross-node tests):
 * - a StatefulSet's pod migrated to the other node: its replacement keeps its name and its state;
 * - fast start: three copies restored from one checkpoint, each with the state at the checkpoint;
 * - node maintenance: `drain` of a node with two pods opted in to migration and one not;
 * - the kernel-update case: `drain --reboot`, the node "rebooted" (cluster.sh reboot-node: its
 *   kubelet and runtime stop, every container is killed, they start again), `uncordon --restore`:
 *   the opted-in pods come back onto it with their state, the other starts fresh.
 * The app is the hook SDK service of the other cluster tests: GET /state says its value and what
 * its hooks were told.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hookedAppState, openCluster, podReady, startHookedAppCluster, waitFor, type Cluster, type HookedAppState, type LineEchoUpstream } from '@cryo/test';

const NS = 'cryo-workflows';

interface Pod {
  metadata: { name: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { kind: string; name: string }[] };
  spec: { nodeName?: string };
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}
interface MigrationObject {
  metadata: { name: string };
  spec: { podName: string; restartInPlace?: boolean; reason?: string };
  status?: { phase?: string; message?: string; sourceNodeName?: string; sourceOwner?: { kind: string; name: string }; targetPodName?: string; targetNodeName?: string; downtimeSeconds?: number; checkpointName?: string };
}

describe('kubectl cryo workflows on two nodes (containerd)', () => {
  const opened = openCluster('containerd', { nodes: 2 });
  describe.skipIf('skip' in opened)('node-1 and node-2', () => {
    const cluster = opened as Cluster;
    let upstream: LineEchoUpstream;
    let image: string;
    let done: (() => Promise<void>) | undefined;

    const optedIn = { 'cryo.dev/hooks': 'enabled', 'cryo.dev/migrate': 'enabled' };
    const hooksOnly = { 'cryo.dev/hooks': 'enabled' };
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
    const barePod = (name: string, annotations: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: { app: name }, annotations }, spec: appSpec() });
    const deployment = (name: string, annotations: Record<string, string>) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: NS },
      spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name }, annotations }, spec: appSpec() } },
    });
    const readyPods = (selector: string, count: number): Promise<Pod[]> =>
      waitFor(
        async () => {
          const { items } = await cluster.get<{ items: Pod[] }>(['-n', NS, 'pods', '-l', selector]);
          return items.length === count && items.every(podReady) ? items : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 500, what: `${count} Ready pod(s) ${selector}` },
      );
    /** The one Ready pod of `app` that is not `notUid` (a replacement), once its app answers. */
    const readyPodOf = async (app: string, notUid?: string): Promise<Pod> =>
      waitFor(
        async () => {
          const { items } = await cluster.get<{ items: Pod[] }>(['-n', NS, 'pods', '-l', `app=${app}`]);
          const ready = items.filter((p) => podReady(p) && p.metadata.uid !== notUid);
          return items.length === 1 && ready.length === 1 ? ready[0] : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 500, what: `a Ready pod of ${app}${notUid === undefined ? '' : ' replacing the original'}` },
      );
    /** The app's state once its hooks have connected to the node agent (so that a checkpoint runs them). */
    const connected = (pod: Pod): Promise<HookedAppState> =>
      waitFor(async () => { const s = await hookedAppState(pod); return s.events.some((e) => e.startsWith('connected')) ? s : undefined; }, { timeoutMs: 30_000, intervalMs: 250, what: `${pod.metadata.name} to connect to its agent` });
    const setValue = async (pod: Pod, value: number): Promise<void> => {
      const response = await fetch(`http://${pod.status.podIP}:8080/value?v=${value}`, { method: 'POST' });
      expect(response.status).toBe(200);
    };
    /** Once its hooks were told how it came back (a restored pod) or right away (a fresh one: told nothing). */
    const stateOf = (pod: Pod, outcome: string | null): Promise<HookedAppState> =>
      waitFor(async () => { const s = await hookedAppState(pod).catch(() => undefined); return s !== undefined && s.lastOutcome === outcome ? s : undefined; }, { timeoutMs: 60_000, intervalMs: 250, what: `${pod.metadata.name} told ${outcome ?? 'nothing'}` });
    const cryo = async (args: string[], timeoutMs = 300_000): Promise<string> => {
      const result = await cluster.kubectlCryo(args, { timeoutMs });
      expect(result.code, `kubectl cryo ${args.join(' ')}:\n${result.stderr}${result.stdout}`).toBe(0);
      return result.stdout;
    };
    const nodeUnschedulable = async (node: string): Promise<boolean> => (await cluster.get<{ spec: { unschedulable?: boolean } }>(['node', node])).spec.unschedulable === true;
    /** Creates objects whose pods must start on node-2 (node-1 cordoned meanwhile), and waits for their pods Ready. */
    const onNode2 = async (objects: object[], apps: string[]): Promise<Pod[]> => {
      await cluster.kubectl(['cordon', 'node-1']);
      try {
        await cluster.apply(...objects);
        const pods = await Promise.all(apps.map((app) => readyPodOf(app)));
        for (const pod of pods) expect(pod.spec.nodeName, pod.metadata.name).toBe('node-2');
        return pods;
      } finally {
        await cluster.kubectl(['uncordon', 'node-1']);
      }
    };

    beforeAll(async () => {
      ({ image, upstream, done } = await startHookedAppCluster(cluster, NS));
    }, 1_200_000);

    afterAll(async () => {
      for (const node of ['node-1', 'node-2']) await cluster.kubectl(['uncordon', node]).catch(() => {});
      await done?.();
    }, 180_000);

    it("migrates a StatefulSet's pod to the other node (kubectl cryo migrate --wait): its replacement keeps its name and carries on", async () => {
      await cluster.apply({
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'ledger', namespace: NS },
        spec: { replicas: 1, serviceName: 'ledger', selector: { matchLabels: { app: 'ledger' } }, template: { metadata: { labels: { app: 'ledger' }, annotations: hooksOnly }, spec: appSpec() } },
      });
      const original = await readyPodOf('ledger');
      expect(original.metadata.name).toBe('ledger-0');
      await connected(original);
      await setValue(original, 31);

      const out = await cryo(['migrate', 'ledger-0', '-n', NS, '--name', 'ledger-move', '--reason', 'e2e', '--wait', '-o', 'json']);
      const done = JSON.parse(out) as MigrationObject;
      const from = original.spec.nodeName!;
      const to = from === 'node-1' ? 'node-2' : 'node-1';
      expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded', sourceNodeName: from, targetNodeName: to, targetPodName: 'ledger-0', sourceOwner: { kind: 'StatefulSet', name: 'ledger' } });
      console.log(`StatefulSet pod ${from} → ${to}: downtime ${done.status!.downtimeSeconds} s`);
      const copy = await readyPodOf('ledger', original.metadata.uid);
      expect(copy.metadata.name).toBe('ledger-0');
      expect(copy.spec.nodeName).toBe(to);
      expect(copy.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'StatefulSet', name: 'ledger' })]);
      expect(copy.metadata.annotations?.['cryo.dev/restore-from']).toBe(done.status!.checkpointName);
      expect(await stateOf(copy, 'restored')).toMatchObject({ value: 31, restoreCount: 1 });
      // `get` lists it as a user reads it.
      expect(await cryo(['get', 'migrations', '-n', NS])).toMatch(new RegExp(`ledger-move\\s+ledger-0\\s+Succeeded`));
      await cluster.kubectl(['-n', NS, 'delete', 'statefulset', 'ledger', '--wait=true'], { timeoutMs: 120_000 });
    }, 300_000);

    it('starts three copies from one checkpoint (kubectl cryo checkpoint, restore --copies 3): each answers with the state at the checkpoint', async () => {
      await cluster.apply(barePod('seed', hooksOnly));
      const seed = await readyPodOf('seed');
      await connected(seed);
      await setValue(seed, 55);
      expect((await cryo(['checkpoint', 'seed', '-n', NS, '--name', 'seed-warm', '--wait', '-o', 'name'])).trim()).toBe('checkpoint.cryo.dev/seed-warm');
      // The original carries on (told "resumed"); what it does next is not in the checkpoint.
      expect(await stateOf(seed, 'resumed')).toMatchObject({ value: 55 });
      await setValue(seed, 56);

      const names = (await cryo(['restore', 'seed-warm', '-n', NS, '--copies', '3', '--name', 'seed-copy', '--wait', '-o', 'name'])).trim().split('\n');
      expect(names).toEqual(['pod/seed-copy-1', 'pod/seed-copy-2', 'pod/seed-copy-3']);
      const copies = await readyPods('cryo.dev/restored-from=seed-warm', 3);
      expect(new Set(copies.map((p) => p.status.podIP)).size).toBe(3);
      for (const copy of copies) {
        // The app's labels stay, so a Service selecting app=seed routes to the copies too.
        expect(copy.metadata.labels).toMatchObject({ app: 'seed', 'cryo.dev/restored-from': 'seed-warm' });
        expect(await stateOf(copy, 'restored')).toMatchObject({ value: 55, restoreCount: 1 });
      }
      expect((await hookedAppState(seed)).value).toBe(56);
      await cluster.kubectl(['-n', NS, 'delete', 'pods', '-l', 'app=seed', '--wait=true'], { timeoutMs: 120_000 });
    }, 300_000);

    it('drains node-2 (kubectl cryo drain): the two pods opted in carry on on node-1 with their state, the other is evicted and starts afresh', async () => {
      const [alpha, beta, gamma] = await onNode2([barePod('alpha', optedIn), deployment('beta', optedIn), deployment('gamma', hooksOnly)], ['alpha', 'beta', 'gamma']);
      await Promise.all([alpha, beta, gamma].map(connected));
      await setValue(alpha, 1);
      await setValue(beta, 2);
      await setValue(gamma, 3);

      // Cryo's own pods on node-2 (a webhook and a controller replica) have emptyDir scratch
      // space, which kubectl drain too evicts only when told.
      const out = await cryo(['drain', 'node-2', '--delete-emptydir-data', '--wait', '--timeout', '10m'], 660_000);
      expect(out).toContain('node/node-2 cordoned');
      expect(out).toMatch(new RegExp(`migration.cryo.dev/alpha-\\S+ created: migrating pod ${NS}/alpha`));
      expect(out).toMatch(new RegExp(`migration.cryo.dev/${beta.metadata.name}-\\S+ created: migrating pod ${NS}/${beta.metadata.name}`));
      expect(out).toContain(`pod/${gamma.metadata.name} evicted (${NS})`);
      expect(out).toMatch(/node\/node-2 drained$/m);
      expect(await nodeUnschedulable('node-2')).toBe(true);

      const alphaCopy = await readyPodOf('alpha', alpha.metadata.uid);
      const betaCopy = await readyPodOf('beta', beta.metadata.uid);
      const gammaFresh = await readyPodOf('gamma', gamma.metadata.uid);
      for (const pod of [alphaCopy, betaCopy, gammaFresh]) expect(pod.spec.nodeName, pod.metadata.name).toBe('node-1');
      expect(await stateOf(alphaCopy, 'restored')).toMatchObject({ value: 1, restoreCount: 1 });
      expect(await stateOf(betaCopy, 'restored')).toMatchObject({ value: 2, restoreCount: 1 });
      expect(await stateOf(gammaFresh, null)).toMatchObject({ value: 0, restoreCount: 0 });
      const { items: migrations } = await cluster.get<{ items: MigrationObject[] }>(['-n', NS, 'migrations']);
      expect(migrations.filter((m) => m.spec.reason === 'kubectl cryo drain node-2').map((m) => m.spec.podName).sort()).toEqual(['alpha', beta.metadata.name]);

      await cryo(['uncordon', 'node-2']);
      expect(await nodeUnschedulable('node-2')).toBe(false);
      await cluster.kubectl(['-n', NS, 'delete', 'deployment', 'beta', 'gamma', '--wait=true'], { timeoutMs: 120_000 });
      await cluster.kubectl(['-n', NS, 'delete', 'pod', 'alpha', '--wait=true'], { timeoutMs: 120_000 });
    }, 900_000);

    it('survives a reboot of node-2 (drain --reboot, reboot, uncordon --restore): the opted-in pods come back onto it with their state, the other starts afresh', async () => {
      const [delta, epsilon, zeta] = await onNode2([barePod('delta', optedIn), deployment('epsilon', optedIn), deployment('zeta', hooksOnly)], ['delta', 'epsilon', 'zeta']);
      await Promise.all([delta, epsilon, zeta].map(connected));
      await setValue(delta, 4);
      await setValue(epsilon, 5);
      await setValue(zeta, 6);

      const drained = await cryo(['drain', 'node-2', '--reboot', '--delete-emptydir-data', '--wait', '--timeout', '10m'], 660_000);
      expect(drained).toContain('node/node-2 may be rebooted now');
      const waiting = (await cluster.get<{ items: MigrationObject[] }>(['-n', NS, 'migrations'])).items.filter((m) => m.spec.reason === 'kubectl cryo drain node-2 --reboot');
      expect(waiting.map((m) => m.spec.podName).sort()).toEqual(['delta', epsilon.metadata.name]);
      for (const m of waiting) expect(m.spec.restartInPlace).toBe(true);

      await cluster.rebootNode('node-2');

      const restored = await cryo(['uncordon', 'node-2', '--restore', '--wait', '--timeout', '5m'], 330_000);
      expect(restored).toMatch(/delta-\S+.*Succeeded/);
      const deltaBack = await readyPodOf('delta', delta.metadata.uid);
      const epsilonBack = await readyPodOf('epsilon', epsilon.metadata.uid);
      expect(deltaBack.spec.nodeName).toBe('node-2');
      expect(epsilonBack.spec.nodeName).toBe('node-2');
      expect(await stateOf(deltaBack, 'restored')).toMatchObject({ value: 4, restoreCount: 1 });
      expect(await stateOf(epsilonBack, 'restored')).toMatchObject({ value: 5, restoreCount: 1 });
      // Not opted in: evicted by the drain, started afresh on the node that stayed up.
      const zetaFresh = await readyPodOf('zeta', zeta.metadata.uid);
      expect(zetaFresh.spec.nodeName).toBe('node-1');
      expect(await stateOf(zetaFresh, null)).toMatchObject({ value: 0, restoreCount: 0 });
    }, 1_200_000);
  });
});
