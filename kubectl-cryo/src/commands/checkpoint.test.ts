import { CHECKPOINT_API_VERSION, type Checkpoint } from '@cryo/common';
import { waitFor } from '@cryo/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../errors.ts';
import { eventAbout, NS, runningPod, startTestCluster, type TestCluster } from '../testing.ts';

let cluster: TestCluster;

beforeEach(async () => {
  cluster = await startTestCluster();
  cluster.api.put(runningPod('web', { containers: ['app', 'proxy'] }));
});

afterEach(async () => {
  await cluster.stop();
});

const checkpoints = () => cluster.api.list<Checkpoint>(CHECKPOINT_API_VERSION, 'checkpoints', NS);

/**
 * Plays the node agent: Running, then the given end, with Events on the way; once the CLI
 * watches (`watches`: 2 on a terminal, the Checkpoint's and its Events'), so it sees each step.
 */
async function agentFinishes(end: 'Succeeded' | 'Failed', watches = 1): Promise<void> {
  const created = await waitFor(() => checkpoints()[0], { what: 'the Checkpoint' });
  await cluster.api.waitForWatches(watches);
  const name = created.metadata!.name!;
  cluster.api.put({ ...created, status: { phase: 'Running', nodeName: 'node-a', startTime: new Date().toISOString() } });
  cluster.api.put(eventAbout('Checkpoint', name, 'CheckpointStarted', 'checkpointing app of pod web on node node-a'));
  const status: Checkpoint['status'] =
    end === 'Succeeded'
      ? {
          phase: 'Succeeded',
          nodeName: 'node-a',
          message: 'checkpointed 1 container',
          totalSize: '41.0 MiB',
          containers: [{ name: 'app', restoreReference: `registry.example/c@sha256:${'a'.repeat(64)}`, referenceType: 'image', sizeBytes: 41 * 1024 * 1024 }],
        }
      : { phase: 'Failed', nodeName: 'node-a', message: 'CRIU dump failed: sockets: Can\'t get 1:16 opt' };
  cluster.api.put({ ...cluster.api.get<Checkpoint>(CHECKPOINT_API_VERSION, 'checkpoints', NS, name)!, status });
  cluster.api.put(eventAbout('Checkpoint', name, end === 'Succeeded' ? 'CheckpointSucceeded' : 'DumpFailed', status.message!, end === 'Succeeded' ? 'Normal' : 'Warning'));
}

describe('kubectl cryo checkpoint', () => {
  it('creates a Checkpoint named <pod>-<suffix> with the flags in its spec, and prints it', async () => {
    const result = await cluster.cli(['checkpoint', 'web', '--containers', 'app', '--reason', 'before upgrade']);
    expect(result).toMatchObject({ code: EXIT.OK, stderr: '' });
    const [created] = checkpoints();
    expect(created.metadata!.name).toMatch(/^web-[a-z0-9]{5}$/);
    expect(created.spec).toEqual({ podName: 'web', containers: ['app'], reason: 'before upgrade' });
    expect(result.stdout).toBe(`checkpoint.cryo.dev/${created.metadata!.name} created\n`);
  });

  it('takes --name, and prints -o json', async () => {
    const result = await cluster.cli(['checkpoint', 'web', '--name', 'web-warm', '-o', 'json']);
    expect(result.code).toBe(EXIT.OK);
    expect(JSON.parse(result.stdout)).toMatchObject({ kind: 'Checkpoint', metadata: { name: 'web-warm', namespace: NS }, spec: { podName: 'web' } });
  });

  it('refuses a pod that does not exist (3), one not Running (1), and a container it does not have (2), creating nothing', async () => {
    const missing = await cluster.cli(['checkpoint', 'nope']);
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(missing.stderr).toMatch(/pod "nope" in namespace shop not found .*kubectl get pods -n shop/);

    cluster.api.put({ ...runningPod('starting'), status: { phase: 'Pending' } });
    const pending = await cluster.cli(['checkpoint', 'starting']);
    expect(pending.code).toBe(EXIT.FAILED);
    expect(pending.stderr).toMatch(/is Pending, and only a Running pod can be checkpointed/);

    const container = await cluster.cli(['checkpoint', 'web', '--containers', 'app,db']);
    expect(container.code).toBe(EXIT.USAGE);
    expect(container.stderr).toContain('pod web has no container "db"; its containers are app, proxy');
    expect(checkpoints()).toEqual([]);
  });

  it('checks the storage class: missing (3, naming the ones open to the namespace) or not open to it (1)', async () => {
    cluster.api.put({ apiVersion: CHECKPOINT_API_VERSION, kind: 'CheckpointStorageClass', metadata: { name: 'team-registry' }, spec: { namespaces: [NS], registry: { repository: 'r.example/c' } } });
    cluster.api.put({ apiVersion: CHECKPOINT_API_VERSION, kind: 'CheckpointStorageClass', metadata: { name: 'billing' }, spec: { namespaces: ['billing'], directory: { path: '/x' } } });
    const missing = await cluster.cli(['checkpoint', 'web', '--storage-class', 'fast']);
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(missing.stderr).toContain('CheckpointStorageClass "fast" not found; the classes open to namespace shop: team-registry');
    const closed = await cluster.cli(['checkpoint', 'web', '--storage-class', 'billing']);
    expect(closed.code).toBe(EXIT.FAILED);
    expect(closed.stderr).toContain('is not open to namespace shop');
    expect((await cluster.cli(['checkpoint', 'web', '--storage-class', 'team-registry'])).code).toBe(EXIT.OK);
    expect(checkpoints().map((c) => c.spec.storageClassName)).toEqual(['team-registry']);
  });

  it('--wait on a terminal prints phases, Events and each container with its size, then exits 0', async () => {
    const [result] = await Promise.all([cluster.cli(['checkpoint', 'web', '--wait'], { tty: true }), agentFinishes('Succeeded', 2)]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.OK);
    const lines = result.stdout.split('\n').map((l) => l.replace(/^\s*[\d.]+s {2}/, ''));
    expect(lines[0]).toMatch(/^checkpoint\.cryo\.dev\/web-\w+ created for pod web on node node-a$/);
    expect(lines).toContain('Running on node node-a');
    expect(lines).toContain('event CheckpointStarted: checkpointing app of pod web on node node-a');
    expect(lines).toContain(`  app  41.0 MiB  registry.example/c@sha256:${'a'.repeat(64)}`);
    expect(lines).toContain('Succeeded: checkpointed 1 container (41.0 MiB)');
    expect(lines.some((l) => l.startsWith('restore it: kubectl cryo restore -n shop web-'))).toBe(true);
  });

  it('--wait off a terminal prints only the result, as -o asks', async () => {
    const [plain] = await Promise.all([cluster.cli(['checkpoint', 'web', '--wait', '--name', 'one']), agentFinishes('Succeeded')]);
    expect(plain).toEqual({ code: EXIT.OK, stdout: 'checkpoint.cryo.dev/one Succeeded 41.0 MiB\n', stderr: '' });
    cluster.api.remove(CHECKPOINT_API_VERSION, 'checkpoints', NS, 'one');
    const [json] = await Promise.all([cluster.cli(['checkpoint', 'web', '--wait', '-o', 'json']), agentFinishes('Succeeded')]);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: { phase: 'Succeeded', containers: [{ name: 'app' }] } });
  });

  it('--wait exits 1 with the agent\'s message when the Checkpoint Failed', async () => {
    const [result] = await Promise.all([cluster.cli(['checkpoint', 'web', '--wait'], { tty: true }), agentFinishes('Failed', 2)]);
    expect(result.code).toBe(EXIT.FAILED);
    expect(result.stdout).toContain("event Warning DumpFailed: CRIU dump failed: sockets: Can't get 1:16 opt");
    expect(result.stderr).toMatch(/^error: Checkpoint web-\w+ Failed: CRIU dump failed.*kubectl cryo describe checkpoint -n shop web-/);
  });

  it('--wait exits 4 after --timeout, saying the Checkpoint carries on', async () => {
    const result = await cluster.cli(['checkpoint', 'web', '--wait', '--timeout', '1s', '--name', 'slow']);
    expect(result.code).toBe(EXIT.TIMEOUT);
    expect(result.stderr).toBe('error: timed out after 1s waiting for Checkpoint slow (phase Pending); the Checkpoint carries on: kubectl cryo describe checkpoint -n shop slow\n');
  });

  it('--wait follows through dropped watches and a compacted history', async () => {
    const running = cluster.cli(['checkpoint', 'web', '--wait', '--name', 'bumpy']);
    await cluster.api.waitForWatches(1);
    cluster.api.closeWatches({ abrupt: true });
    cluster.api.compactHistory();
    await agentFinishes('Succeeded');
    expect(await running).toMatchObject({ code: EXIT.OK, stdout: 'checkpoint.cryo.dev/bumpy Succeeded 41.0 MiB\n' });
  });

  it('is interrupted without losing anything: exit 130, the Checkpoint stays', async () => {
    const interrupt = new AbortController();
    const running = cluster.cli(['checkpoint', 'web', '--wait', '--name', 'kept'], { signal: interrupt.signal });
    await cluster.api.waitForWatches(1);
    const { Interrupted } = await import('../errors.ts');
    interrupt.abort(new Interrupted());
    const result = await running;
    expect(result.code).toBe(EXIT.INTERRUPTED);
    expect(result.stderr).toMatch(/^interrupted: nothing is lost/);
    expect(checkpoints().map((c) => c.metadata!.name)).toEqual(['kept']);
  });
});
