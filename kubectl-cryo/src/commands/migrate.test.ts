import { CHECKPOINT_API_VERSION, type Migration } from '@cryo/common';
import { waitFor } from '@cryo/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../errors.ts';
import { eventAbout, migration, node, NS, runningPod, startTestCluster, type TestCluster } from '../testing.ts';

let cluster: TestCluster;

beforeEach(async () => {
  cluster = await startTestCluster();
  cluster.api.put(runningPod('web', { node: 'node-a' }));
  cluster.api.put(node('node-a'));
  cluster.api.put(node('node-b'));
});

afterEach(async () => {
  await cluster.stop();
});

const migrations = () => cluster.api.list<Migration>(CHECKPOINT_API_VERSION, 'migrations', NS);

/** Plays the controller through the phases to `end`, once the CLI watches. */
async function controllerRuns(end: 'Succeeded' | 'Failed', watches = 1): Promise<void> {
  const created = await waitFor(() => migrations()[0], { what: 'the Migration' });
  await cluster.api.waitForWatches(watches);
  const name = created.metadata!.name!;
  const step = (status: Migration['status']) => cluster.api.put({ ...cluster.api.get<Migration>(CHECKPOINT_API_VERSION, 'migrations', NS, name)!, status });
  step({ phase: 'Checkpointing', sourceNodeName: 'node-a', checkpointName: `${name}-ck` });
  cluster.api.put(eventAbout('Migration', name, 'Checkpointing', `checkpointing pod web into Checkpoint ${name}-ck`));
  step({ phase: 'StoppingSource', sourceNodeName: 'node-a' });
  if (end === 'Failed') {
    step({ phase: 'Failed', sourceNodeName: 'node-a', message: 'evicting pod web: a PodDisruptionBudget allows no disruption' });
    return;
  }
  step({ phase: 'Restoring', sourceNodeName: 'node-a' });
  step({ phase: 'Succeeded', sourceNodeName: 'node-a', targetPodName: 'web', targetNodeName: 'node-b', downtimeSeconds: 2.4 });
}

describe('kubectl cryo migrate', () => {
  it('creates a Migration <pod>-<suffix> with the target and storage class', async () => {
    const result = await cluster.cli(['migrate', 'web', '--to', 'node-b', '--storage-class', 'team-registry', '--reason', 'rebalance']);
    expect(result.code).toBe(EXIT.OK);
    const [created] = migrations();
    expect(created.metadata!.name).toMatch(/^web-[a-z0-9]{5}$/);
    expect(created.spec).toEqual({ podName: 'web', targetNodeName: 'node-b', storageClassName: 'team-registry', reason: 'rebalance' });
    expect(result.stdout).toBe(`migration.cryo.dev/${created.metadata!.name} created\n`);
  });

  it('refuses --to the node the pod is on (2), a node or pod that does not exist (3), a pod already migrating (1)', async () => {
    expect((await cluster.cli(['migrate', 'web', '--to', 'node-a'])).stderr).toContain('--to node-a: pod web already runs there');
    expect((await cluster.cli(['migrate', 'web', '--to', 'node-z'])).code).toBe(EXIT.NOT_FOUND);
    expect((await cluster.cli(['migrate', 'ghost'])).code).toBe(EXIT.NOT_FOUND);
    cluster.api.put(migration('web-busy', 'web', {}, { phase: 'Checkpointing' }));
    const busy = await cluster.cli(['migrate', 'web']);
    expect(busy.code).toBe(EXIT.FAILED);
    expect(busy.stderr).toContain('pod web is already being migrated by Migration web-busy (Checkpointing); follow it: kubectl cryo describe migration -n shop web-busy');
    expect(migrations()).toHaveLength(1);
  });

  it('--wait follows phases and Events on a terminal and ends with where the pod runs', async () => {
    const [result] = await Promise.all([cluster.cli(['migrate', 'web', '--wait', '--name', 'mv'], { tty: true }), controllerRuns('Succeeded', 2)]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.OK);
    const lines = result.stdout.split('\n').map((l) => l.replace(/^\s*[\d.]+s {2}/, ''));
    expect(lines).toEqual(
      expect.arrayContaining([
        'migration.cryo.dev/mv created: pod web from node node-a to another node',
        'shop/mv Checkpointing',
        'shop/mv event Checkpointing: checkpointing pod web into Checkpoint mv-ck',
        'shop/mv Restoring',
        'Succeeded: pod web on node node-b (downtime 2.4s)',
      ]),
    );
  });

  it('--wait exits 1 with the step that Failed; off a terminal -o json prints the Migration', async () => {
    const [result] = await Promise.all([cluster.cli(['migrate', 'web', '--wait', '--name', 'mv', '-o', 'json']), controllerRuns('Failed')]);
    expect(result.code).toBe(EXIT.FAILED);
    expect(JSON.parse(result.stdout)).toMatchObject({ kind: 'Migration', status: { phase: 'Failed' } });
    expect(result.stderr).toBe('error: Migration mv Failed: evicting pod web: a PodDisruptionBudget allows no disruption (kubectl cryo describe migration -n shop mv)\n');
  });
});
