import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { annotations, CHECKPOINT_API_VERSION, type Migration } from '@cryo/common';
import { waitFor } from '@cryo/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../errors.ts';
import { migration, node, NS, runningPod, startTestCluster, type TestCluster } from '../testing.ts';
import { planDrain, podKey } from './drain.ts';

const OPTED_IN = { [annotations.MIGRATE]: annotations.MIGRATE_ENABLED };

function nodeAPods(): V1Pod[] {
  return [
    runningPod('web-1', { owner: 'ReplicaSet/web-7c9f8', labels: { app: 'web' } }),
    runningPod('cache-0', { owner: 'StatefulSet/cache', annotations: OPTED_IN }),
    runningPod('logs-x', { owner: 'DaemonSet/logs' }),
    runningPod('etcd-node-a', { namespace: 'kube-system', annotations: { 'kubernetes.io/config.mirror': 'abc' } }),
    { ...runningPod('job-done'), status: { phase: 'Succeeded' } },
    runningPod('search-0', { owner: 'StatefulSet/search', labels: { app: 'search' } }),
  ];
}

describe('planDrain', () => {
  it('migrates opted-in or selected pods, evicts the rest, leaves DaemonSet, mirror and terminating pods', () => {
    const terminating = runningPod('leaving', { owner: 'ReplicaSet/x' });
    terminating.metadata!.deletionTimestamp = new Date();
    const plan = planDrain([...nodeAPods(), terminating], new Set([`${NS}/search-0`]), { force: false, deleteEmptyDirData: false });
    expect(plan.problems).toEqual([]);
    expect(plan.actions.map((a) => `${a.kind} ${podKey(a.pod)}`)).toEqual([
      'evict shop/web-1',
      'migrate shop/cache-0',
      'skip shop/logs-x',
      'skip kube-system/etcd-node-a',
      'evict shop/job-done',
      'migrate shop/search-0',
      'skip shop/leaving',
    ]);
  });

  it('names the pods an eviction would lose (no controller, emptyDir) unless forced', () => {
    const pods = [runningPod('lonely'), runningPod('scratchy', { owner: 'ReplicaSet/s', emptyDir: true }), runningPod('lonely-but-migrated', { annotations: OPTED_IN })];
    const plan = planDrain(pods, new Set(), { force: false, deleteEmptyDirData: false });
    expect(plan.problems).toEqual([
      'shop/lonely: no controller (ReplicaSet, StatefulSet, Job...) would re-create it, so evicting it deletes it for good; opt it in to migration (annotation cryo.dev/migrate: enabled, or --selector), or pass --force',
      'shop/scratchy: its emptyDir volume(s) scratch are deleted with it; pass --delete-emptydir-data',
    ]);
    expect(planDrain(pods, new Set(), { force: true, deleteEmptyDirData: true }).problems).toEqual([]);
  });
});

describe('kubectl cryo drain', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await startTestCluster();
    cluster.api.put(node('node-a'));
    cluster.api.put(node('node-b'));
    for (const pod of nodeAPods()) cluster.api.put(pod);
    cluster.api.put(runningPod('elsewhere', { node: 'node-b', owner: 'ReplicaSet/web-7c9f8' }));
  });

  afterEach(async () => {
    await cluster.stop();
  });

  const podNames = () => [...cluster.api.list<V1Pod>('v1', 'pods', NS), ...cluster.api.list<V1Pod>('v1', 'pods', 'kube-system')].map(podKey).sort();
  const migrations = () => cluster.api.list<Migration>(CHECKPOINT_API_VERSION, 'migrations');
  const cordoned = (name: string) => cluster.api.get<V1Node>('v1', 'nodes', undefined, name)!.spec?.unschedulable === true;

  it('cordons, creates a Migration for each opted-in pod, evicts the others and leaves DaemonSet and mirror pods', async () => {
    const result = await cluster.cli(['drain', 'node-a'], { namespace: null });
    expect(result.code).toBe(EXIT.OK);
    expect(cordoned('node-a')).toBe(true);
    expect(cordoned('node-b')).toBe(false);
    expect(podNames()).toEqual(['kube-system/etcd-node-a', 'shop/cache-0', 'shop/elsewhere', 'shop/logs-x']);
    const [created] = migrations();
    expect(migrations()).toHaveLength(1);
    expect(created.metadata!.name).toMatch(/^cache-0-[a-z0-9]{5}$/);
    expect(created.spec).toEqual({ podName: 'cache-0', reason: 'kubectl cryo drain node-a' });
    expect(result.stdout).toContain('node/node-a cordoned\n');
    expect(result.stdout).toContain(`migration.cryo.dev/${created.metadata!.name} created: migrating pod shop/cache-0\n`);
    expect(result.stdout).toContain('evicting pod shop/web-1\n');
    expect(result.stdout).toContain('pod/search-0 evicted (shop)\n');
    expect(result.stdout).toMatch(/node\/node-a drained: evictions done, 1 Migration\(s\) running/);
    expect(result.stderr).toContain('Warning: leaving pod shop/logs-x: managed by DaemonSet logs');
    expect(result.stderr).toContain('Warning: leaving pod kube-system/etcd-node-a: a static pod');
    const evictions = cluster.api.requests.filter((r) => r.path.endsWith('/eviction'));
    expect(evictions.map((r) => r.body)).toContainEqual({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'web-1', namespace: NS } });
  });

  it('migrates pods matching --selector too, restarting in place with --reboot', async () => {
    const result = await cluster.cli(['drain', 'node-a', '--selector', 'app=search', '--reboot'], { namespace: null });
    expect(result.code).toBe(EXIT.OK);
    expect(migrations().map((m) => [m.spec.podName, m.spec.restartInPlace, m.spec.reason]).sort()).toEqual([
      ['cache-0', true, 'kubectl cryo drain node-a --reboot'],
      ['search-0', true, 'kubectl cryo drain node-a --reboot'],
    ]);
    expect(result.stdout).toContain('before rebooting, wait until each Migration is WaitingForNode');
  });

  it('refuses, before evicting or migrating anything, pods an eviction would lose; the node stays cordoned', async () => {
    cluster.api.put(runningPod('lonely'));
    const result = await cluster.cli(['drain', 'node-a'], { namespace: null });
    expect(result.code).toBe(EXIT.FAILED);
    expect(result.stderr).toContain('error: shop/lonely: no controller');
    expect(result.stderr).toContain('nothing was evicted or migrated, the node stays cordoned (kubectl cryo uncordon node-a undoes it)');
    expect(cordoned('node-a')).toBe(true);
    expect(migrations()).toEqual([]);
    expect(podNames()).toContain('shop/web-1');
    expect((await cluster.cli(['drain', 'node-a', '--force'], { namespace: null })).code).toBe(EXIT.OK);
    expect(podNames()).not.toContain('shop/lonely');
  });

  it('retries an eviction a disruption budget refuses (429), as kubectl drain does', async () => {
    cluster.api.failNext({ method: 'POST', pathPrefix: `/api/v1/namespaces/${NS}/pods/web-1/eviction`, status: 429, times: 2, message: "Cannot evict pod as it would violate the pod's disruption budget." });
    const result = await cluster.cli(['drain', 'node-a'], { namespace: null });
    expect(result.code).toBe(EXIT.OK);
    expect(result.stderr.match(/error when evicting pods\/"web-1" -n "shop" \(will retry after 50 ms\): Cannot evict pod as it would violate the pod's disruption budget\./g)).toHaveLength(2);
    expect(podNames()).not.toContain('shop/web-1');
  });

  it('exits 4 when a disruption budget holds past --timeout', async () => {
    cluster.api.failNext({ method: 'POST', pathPrefix: `/api/v1/namespaces/${NS}/pods/web-1/eviction`, status: 429, times: 1000, message: 'budget' });
    const result = await cluster.cli(['drain', 'node-a', '--timeout', '1s'], { namespace: null });
    expect(result.code).toBe(EXIT.TIMEOUT);
    expect(result.stderr).toMatch(/timed out after 1s waiting for node node-a to drain; the node stays cordoned/);
  });

  it('exits 1 naming the pod when an eviction fails otherwise', async () => {
    cluster.api.failNext({ method: 'POST', pathPrefix: `/api/v1/namespaces/${NS}/pods/web-1/eviction`, status: 500, message: 'etcd is sad' });
    const result = await cluster.cli(['drain', 'node-a'], { namespace: null });
    expect(result.code).toBe(EXIT.FAILED);
    expect(result.stderr).toContain('error: evicting pod shop/web-1: the API server refused it (HTTP 500): etcd is sad');
  });

  it('--dry-run says what it would do and changes nothing', async () => {
    const result = await cluster.cli(['drain', 'node-a', '--dry-run'], { namespace: null });
    expect(result.code).toBe(EXIT.OK);
    expect(result.stdout).toContain('would migrate pod shop/cache-0\n');
    expect(result.stdout).toContain('would evict pod shop/web-1\n');
    expect(result.stdout).toContain('node/node-a would be cordoned (dry run: nothing changed)');
    expect(cordoned('node-a')).toBe(false);
    expect(cluster.api.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('run again, reuses the Migration still running for a pod', async () => {
    cluster.api.put(migration('cache-0-first', 'cache-0', { restartInPlace: true }, { phase: 'Checkpointing' }));
    const result = await cluster.cli(['drain', 'node-a', '--reboot'], { namespace: null });
    expect(result.code).toBe(EXIT.OK);
    expect(result.stdout).toContain('migration.cryo.dev/cache-0-first already migrating pod shop/cache-0 (Checkpointing)');
    expect(migrations()).toHaveLength(1);
  });

  it('--reboot --wait returns once evicted pods are gone and each Migration has stopped its pod', async () => {
    const running = cluster.cli(['drain', 'node-a', '--reboot', '--wait'], { namespace: null });
    const created = await waitFor(() => migrations()[0], { what: 'the Migration' });
    await cluster.api.waitForWatches(1);
    cluster.api.put({ ...created, status: { phase: 'Checkpointing', sourceNodeName: 'node-a' } });
    cluster.api.put({ ...cluster.api.get<Migration>(CHECKPOINT_API_VERSION, 'migrations', NS, created.metadata!.name!)!, status: { phase: 'WaitingForNode', sourceNodeName: 'node-a', message: 'waiting for node node-a to be Ready and schedulable' } });
    const result = await running;
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(EXIT.OK);
    expect(result.stdout).toContain(`migration.cryo.dev/${created.metadata!.name} shop: pod cache-0 WaitingForNode: waiting for node node-a to be Ready and schedulable\n`);
    expect(result.stdout).toContain('node/node-a may be rebooted now; once it is back: kubectl cryo uncordon node-a --restore --wait');
  });

  it('--wait exits 1 when a Migration Failed', async () => {
    const running = cluster.cli(['drain', 'node-a', '--wait'], { namespace: null });
    const created = await waitFor(() => migrations()[0], { what: 'the Migration' });
    await cluster.api.waitForWatches(1);
    cluster.api.put({ ...created, status: { phase: 'Failed', message: 'checkpoint failed' } });
    const result = await running;
    expect(result.code).toBe(EXIT.FAILED);
    expect(result.stderr).toContain(`1 Migration(s) Failed: shop/${created.metadata!.name}`);
  });

  it('exits 3 for a node that does not exist', async () => {
    const result = await cluster.cli(['drain', 'node-z'], { namespace: null });
    expect(result.code).toBe(EXIT.NOT_FOUND);
    expect(result.stderr).toContain('node "node-z" not found');
  });
});

describe('kubectl cryo uncordon', () => {
  let cluster: TestCluster;

  beforeEach(async () => {
    cluster = await startTestCluster();
    cluster.api.put(node('node-a', { unschedulable: true }));
    cluster.api.put(migration('cache-0-m', 'cache-0', { restartInPlace: true }, { phase: 'WaitingForNode', sourceNodeName: 'node-a' }));
    cluster.api.put(migration('api-m', 'api', { restartInPlace: true }, { phase: 'WaitingForNode', sourceNodeName: 'node-a' }, 'billing'));
    cluster.api.put(migration('done-m', 'done', { restartInPlace: true }, { phase: 'Succeeded', sourceNodeName: 'node-a' }));
    cluster.api.put(migration('other-m', 'other', { restartInPlace: true }, { phase: 'WaitingForNode', sourceNodeName: 'node-b' }));
    cluster.api.put(migration('moved-m', 'moved', {}, { phase: 'Restoring', sourceNodeName: 'node-a' }));
  });

  afterEach(async () => {
    await cluster.stop();
  });

  it('uncordons, and says how many Migrations restart in place there', async () => {
    const result = await cluster.cli(['uncordon', 'node-a']);
    expect(result.code).toBe(EXIT.OK);
    expect(cluster.api.get<V1Node>('v1', 'nodes', undefined, 'node-a')!.spec?.unschedulable).toBe(false);
    expect(result.stdout).toBe('node/node-a uncordoned\n2 Migration(s) restart in place on this node and proceed now; follow them: kubectl cryo uncordon node-a --restore --wait\n');
    expect((await cluster.cli(['uncordon', 'node-a'])).stdout).toMatch(/^node\/node-a already uncordoned\n/);
  });

  it('--restore lists them (every namespace), --wait follows them to the end', async () => {
    const running = cluster.cli(['uncordon', 'node-a', '--restore', '--wait']);
    await cluster.api.waitForWatches(1);
    for (const [namespace, name] of [
      [NS, 'cache-0-m'],
      ['billing', 'api-m'],
    ]) {
      const m = cluster.api.get<Migration>(CHECKPOINT_API_VERSION, 'migrations', namespace, name)!;
      cluster.api.put({ ...m, status: { ...m.status, phase: 'Succeeded', targetPodName: m.spec.podName, targetNodeName: 'node-a' } });
    }
    const result = await running;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.OK);
    expect(result.stdout).toContain('migration.cryo.dev/cache-0-m shop: pod cache-0 WaitingForNode\n');
    expect(result.stdout).toContain('migration.cryo.dev/api-m billing: pod api WaitingForNode\n');
    expect(result.stdout).toContain('the controller restores these pods on node node-a now\n');
    expect(result.stdout).toContain('migration.cryo.dev/api-m billing: Succeeded: pod api on node node-a\n');
    expect(result.stdout).not.toMatch(/done-m|other-m|moved-m/);
  });

  it('falls back to the namespace when Migrations cannot be listed cluster-wide', async () => {
    cluster.api.failNext({ method: 'GET', pathPrefix: '/apis/cryo.dev/v1alpha1/migrations', status: 403, message: 'migrations.cryo.dev is forbidden' });
    const result = await cluster.cli(['uncordon', 'node-a', '--restore']);
    expect(result.code).toBe(EXIT.OK);
    expect(result.stdout).toContain('migration.cryo.dev/cache-0-m shop');
    expect(result.stdout).not.toContain('api-m');
  });

  it('--wait exits 1 when one Failed', async () => {
    const running = cluster.cli(['uncordon', 'node-a', '--wait']);
    await cluster.api.waitForWatches(1);
    for (const [namespace, name, phase] of [
      [NS, 'cache-0-m', 'Failed'],
      ['billing', 'api-m', 'Succeeded'],
    ] as const) {
      const m = cluster.api.get<Migration>(CHECKPOINT_API_VERSION, 'migrations', namespace, name)!;
      cluster.api.put({ ...m, status: { ...m.status, phase, message: phase === 'Failed' ? 'restore failed on node-a' : '' } });
    }
    const result = await running;
    expect(result.code).toBe(EXIT.FAILED);
    expect(result.stderr).toBe('error: 1 Migration(s) Failed: shop/cache-0-m (kubectl cryo describe migration -n <namespace> <name>)\n');
  });
});
