import type { V1Pod } from '@kubernetes/client-node';
import { annotations, podLabels } from '@cryo/common';
import { waitFor } from '@cryo/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../errors.ts';
import { node, NS, startTestCluster, succeededCheckpoint, type TestCluster } from '../testing.ts';

let cluster: TestCluster;

beforeEach(async () => {
  cluster = await startTestCluster();
  cluster.api.put(succeededCheckpoint('web-warm', 'web'));
  cluster.api.put(node('node-a'));
  cluster.api.put(node('node-b'));
});

afterEach(async () => {
  await cluster.stop();
});

const pods = () => cluster.api.list<V1Pod>('v1', 'pods', NS);

/** Plays scheduler and kubelet: the pod runs Ready on `nodeName` (or gets the given container state). */
function podRuns(name: string, nodeName = 'node-b', waiting?: { reason: string; message: string }): void {
  const pod = cluster.api.get<V1Pod>('v1', 'pods', NS, name)!;
  cluster.api.put({
    ...pod,
    spec: { ...pod.spec!, nodeName },
    status:
      waiting === undefined
        ? { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'x', imageID: 'x', state: { running: {} } }] }
        : { phase: 'Pending', containerStatuses: [{ name: 'app', ready: false, restartCount: 0, image: 'x', imageID: 'x', state: { waiting } }] },
  });
}

describe('kubectl cryo restore', () => {
  it('creates the pod from the pod template, annotated to restore from the checkpoint, named by the apiserver', async () => {
    const result = await cluster.cli(['restore', 'web-warm']);
    expect(result.code).toBe(EXIT.OK);
    const [pod] = pods();
    expect(result.stdout).toBe(`pod/${pod.metadata!.name} created\n`);
    expect(pod.metadata!.name).toMatch(/^web-restored-[a-z0-9]{5}$/);
    expect(pod.metadata!.labels).toEqual({ app: 'web', [podLabels.RESTORED_FROM]: 'web-warm' });
    expect(pod.metadata!.annotations).toEqual({ team: 'shop', [annotations.RESTORE_FROM]: 'web-warm' });
    expect(pod.spec!.nodeName).toBeUndefined();
    expect(pod.spec!.containers).toEqual([{ name: 'app', image: 'app:1' }]);
    expect(pod.metadata!.ownerReferences).toBeUndefined();
  });

  it('creates N copies <name>-1..N pinned to --node, and prints them as a List with -o json', async () => {
    const result = await cluster.cli(['restore', 'web-warm', '--copies', '3', '--name', 'web-copy', '--node', 'node-b', '-o', 'json']);
    expect(result.code).toBe(EXIT.OK);
    const printed = JSON.parse(result.stdout);
    expect(printed.kind).toBe('List');
    expect(printed.items.map((p: V1Pod) => p.metadata!.name)).toEqual(['web-copy-1', 'web-copy-2', 'web-copy-3']);
    for (const pod of pods()) {
      expect(pod.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-b'] }] }]);
    }
  });

  it('refuses what cannot be restored, creating nothing: missing (3), not Succeeded or Expired (1), without a pod template (1)', async () => {
    const missing = await cluster.cli(['restore', 'nope']);
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(missing.stderr).toContain('see what exists: kubectl cryo get checkpoints -n shop');

    cluster.api.put({ ...succeededCheckpoint('busy'), status: { phase: 'Running' } });
    const busy = await cluster.cli(['restore', 'busy']);
    expect(busy).toMatchObject({ code: EXIT.FAILED, stderr: 'error: Checkpoint busy is Running, not Succeeded yet; wait for it (kubectl cryo describe checkpoint -n shop busy) and restore then\n' });

    cluster.api.put({ ...succeededCheckpoint('gone'), status: { ...succeededCheckpoint('gone').status, phase: 'Expired', message: 'removed by retention (max count 3)' } });
    expect((await cluster.cli(['restore', 'gone'])).stderr).toContain('Checkpoint gone is Expired: removed by retention (max count 3); take a new Checkpoint');

    const old = succeededCheckpoint('old');
    delete old.status!.podTemplate;
    cluster.api.put(old);
    const noTemplate = await cluster.cli(['restore', 'old']);
    expect(noTemplate.code).toBe(EXIT.FAILED);
    expect(noTemplate.stderr).toContain('taken before Cryo recorded pod templates; restore single containers with cryo.dev/restore-from: old');
    expect(pods()).toEqual([]);
  });

  it('checks --node: a node that does not exist (3), another node than the one holding a node-local checkpoint (2)', async () => {
    const missing = await cluster.cli(['restore', 'web-warm', '--node', 'node-z']);
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(missing.stderr).toContain('node "node-z" not found');
    cluster.api.put(succeededCheckpoint('local', 'web', { storage: { type: 'directory' } }));
    const local = await cluster.cli(['restore', 'local', '--node', 'node-b']);
    expect(local.code).toBe(EXIT.USAGE);
    expect(local.stderr).toContain('is in the directory store of node node-a, whose node agent alone serves it, so it restores only there: drop --node, or use --node node-a');
    expect(pods()).toEqual([]);
    expect((await cluster.cli(['restore', 'local', '--node', 'node-a'])).code).toBe(EXIT.OK);
  });

  it('refuses bad --copies as a usage error', async () => {
    const result = await cluster.cli(['restore', 'web-warm', '--copies', '0']);
    expect(result).toMatchObject({ code: EXIT.USAGE, stderr: 'error: --copies: expected a whole number from 1 to 100, got "0"\n' });
  });

  it("reports a refusal at admission with the API server's words, and what was created before it", async () => {
    cluster.api.failNext({ method: 'POST', pathPrefix: `/api/v1/namespaces/${NS}/pods`, status: 422, message: 'admission webhook "restore.cryo.dev" denied the request: no container matches' });
    const refused = await cluster.cli(['restore', 'web-warm', '--name', 'w']);
    expect(refused.code).toBe(EXIT.FAILED);
    expect(refused.stderr).toBe('error: creating pod w from Checkpoint web-warm: the API server refused it (HTTP 422): admission webhook "restore.cryo.dev" denied the request: no container matches\n');

    cluster.api.put({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'v-2', namespace: NS }, spec: { containers: [{ name: 'app', image: 'other' }] } });
    const second = await cluster.cli(['restore', 'web-warm', '--name', 'v', '--copies', '2']);
    expect(second.code).toBe(EXIT.FAILED);
    expect(second.stdout).toBe('pod/v-1 created\n');
    expect(second.stderr).toMatch(/^error: creating pod v-2 from Checkpoint web-warm: .*pods "v-2" already exists \(created before it: pod\/v-1; they stay\)\n$/);
  });

  it('--wait waits until every copy is Ready, showing progress on a terminal', async () => {
    const running = cluster.cli(['restore', 'web-warm', '--copies', '2', '--name', 'w', '--wait'], { tty: true });
    await waitFor(() => pods().length === 2 || undefined);
    await cluster.api.waitForWatches(1);
    podRuns('w-1', 'node-a');
    podRuns('w-2', 'node-b');
    const result = await running;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.OK);
    expect(result.stdout).toContain('pod/w-1 created\npod/w-2 created\n');
    expect(result.stdout).toMatch(/pod\/w-1 Pending\n/);
    expect(result.stdout).toMatch(/pod\/w-2 Running on node-b, Ready\n/);
    expect(result.stdout).toMatch(/pod\/w-1 Ready on node node-a\npod\/w-2 Ready on node node-b\n$/);
  });

  it('--wait fails fast (1) when a pod cannot start, naming the container and the runtime\'s message', async () => {
    const running = cluster.cli(['restore', 'web-warm', '--name', 'w', '--wait']);
    await waitFor(() => pods().length === 1 || undefined);
    podRuns('w', 'node-b', { reason: 'CreateContainerError', message: 'criu restore failed: see restore.log' });
    const result = await running;
    expect(result.code).toBe(EXIT.FAILED);
    expect(result.stderr).toBe('error: pod w cannot start: container app CreateContainerError: criu restore failed: see restore.log (kubectl describe pod -n shop w)\n');
  });

  it('--wait exits 4 after --timeout; the pods stay', async () => {
    const result = await cluster.cli(['restore', 'web-warm', '--name', 'w', '--wait', '--timeout', '1s']);
    expect(result.code).toBe(EXIT.TIMEOUT);
    expect(result.stderr).toContain('the pods carry on: kubectl get pods -n shop -l cryo.dev/restored-from=web-warm');
    expect(pods().map((p) => p.metadata!.name)).toEqual(['w']);
  });
});
