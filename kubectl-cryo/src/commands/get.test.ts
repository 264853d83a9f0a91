import { loadYaml } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../errors.ts';
import { eventAbout, migration, startTestCluster, succeededCheckpoint, type TestCluster } from '../testing.ts';

let cluster: TestCluster;

beforeEach(async () => {
  cluster = await startTestCluster();
  cluster.api.put(succeededCheckpoint('web-warm', 'web'));
  cluster.api.put({ ...succeededCheckpoint('db-1', 'db'), status: { phase: 'Running', nodeName: 'node-b' } });
  cluster.api.put({ ...succeededCheckpoint('other', 'x'), metadata: { name: 'other', namespace: 'billing' } });
  cluster.api.put(migration('web-mig', 'web', { targetNodeName: 'node-c' }, { phase: 'Restoring', sourceNodeName: 'node-a', checkpointName: 'web-mig-ck', downtimeSeconds: 1.25 }));
});

afterEach(async () => {
  await cluster.stop();
});

describe('kubectl cryo get', () => {
  it("lists the namespace's Checkpoints as a table by default", async () => {
    const result = await cluster.cli(['get']);
    expect(result.code).toBe(EXIT.OK);
    const [header, ...rows] = result.stdout.trimEnd().split('\n');
    expect(header.split(/\s{3,}/)).toEqual(['NAME', 'POD', 'PHASE', 'SIZE', 'AGE']);
    expect(rows[0]).toMatch(/^db-1 +db +Running +\d+s$/);
    expect(rows[1]).toMatch(/^web-warm +web +Succeeded +41\.0 MiB +\d+s$/);
    expect(rows).toHaveLength(2);
  });

  it('shows more with -o wide, and every namespace with -A', async () => {
    const wide = await cluster.cli(['get', 'checkpoints', '-o', 'wide']);
    expect(wide.stdout.split('\n')[0].split(/\s{3,}/)).toEqual(['NAME', 'POD', 'PHASE', 'SIZE', 'AGE', 'NODE', 'STORAGE', 'CONTAINERS', 'MESSAGE']);
    expect(wide.stdout).toMatch(/web-warm\s+web\s+Succeeded\s+41\.0 MiB\s+\S+\s+node-a\s+registry\/team-registry\s+app\s+checkpointed 1 container/);
    const all = await cluster.cli(['get', 'ckpt', '-A', '-o', 'name']);
    expect(all.stdout.split('\n').filter(Boolean).sort()).toEqual(['checkpoint.cryo.dev/db-1', 'checkpoint.cryo.dev/other', 'checkpoint.cryo.dev/web-warm']);
  });

  it('prints one object as JSON or YAML, and a list as a kubectl List', async () => {
    const one = await cluster.cli(['get', 'checkpoint', 'web-warm', '-o', 'json']);
    expect(JSON.parse(one.stdout)).toMatchObject({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: 'web-warm' }, status: { phase: 'Succeeded' } });
    const list = await cluster.cli(['get', 'checkpoints', '-o', 'yaml']);
    const parsed = loadYaml<{ kind: string; items: { kind: string; metadata: { name: string } }[] }>(list.stdout);
    expect(parsed.kind).toBe('List');
    expect(parsed.items.map((i) => [i.kind, i.metadata.name])).toEqual([
      ['Checkpoint', 'db-1'],
      ['Checkpoint', 'web-warm'],
    ]);
  });

  it('lists Migrations with source, target and, wide, downtime', async () => {
    const result = await cluster.cli(['get', 'migrations', '-o', 'wide']);
    expect(result.stdout.split('\n')[0].split(/\s{3,}/)).toEqual(['NAME', 'POD', 'PHASE', 'SOURCE', 'TARGET', 'AGE', 'CHECKPOINT', 'TARGET-POD', 'DOWNTIME', 'MESSAGE']);
    expect(result.stdout).toMatch(/web-mig\s+web\s+Restoring\s+node-a\s+node-c\s+\S+\s+web-mig-ck\s+1\.3s/);
  });

  it('says so on stderr when there is nothing, exit 0', async () => {
    const result = await cluster.cli(['get', 'migrations'], { namespace: 'empty' });
    expect(result).toEqual({ code: EXIT.OK, stdout: '', stderr: 'No resources found in empty namespace.\n' });
  });

  it('exits 3 for a name that does not exist, and 2 for an unknown type or -o', async () => {
    const missing = await cluster.cli(['get', 'checkpoint', 'nope']);
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(missing.stderr).toBe('error: Checkpoint "nope" in namespace shop not found (checkpoints.cryo.dev "nope" not found); see what exists: kubectl cryo get checkpoints -n shop\n');
    expect((await cluster.cli(['get', 'pods'])).code).toBe(EXIT.USAGE);
    expect((await cluster.cli(['get', '-o', 'table'])).stderr).toBe('error: -o table: expected one of json, yaml, name, wide\n');
  });

  it('says Cryo is not installed when the API server does not serve the resource', async () => {
    cluster.api.failNext({ pathPrefix: '/apis/cryo.dev', status: 404, message: 'the server could not find the requested resource' });
    const result = await cluster.cli(['get']);
    expect(result.code).toBe(EXIT.NOT_FOUND);
    expect(result.stderr).toMatch(/is Cryo installed on this cluster\? Install it with kubectl apply -k manifests\//);
  });

  it('exits 3 with what to ask for when RBAC forbids it', async () => {
    cluster.api.failNext({ pathPrefix: '/apis/cryo.dev', status: 403, message: 'checkpoints.cryo.dev is forbidden: User "dev" cannot list resource "checkpoints"' });
    const result = await cluster.cli(['get']);
    expect(result.code).toBe(EXIT.NOT_FOUND);
    expect(result.stderr).toContain('forbidden: checkpoints.cryo.dev is forbidden: User "dev" cannot list resource "checkpoints"; ask your cluster administrator');
  });
});

describe('kubectl cryo describe', () => {
  it('shows a Checkpoint: status, storage, each container, whether it restores whole, and its Events', async () => {
    cluster.api.put(eventAbout('Checkpoint', 'web-warm', 'CheckpointStarted', 'checkpointing app of pod web on node node-a'));
    cluster.api.put(eventAbout('Checkpoint', 'db-1', 'CheckpointStarted', 'not this one'));
    const result = await cluster.cli(['describe', 'checkpoint', 'web-warm']);
    expect(result.code).toBe(EXIT.OK);
    const out = result.stdout;
    expect(out).toMatch(/^Name: +web-warm\n/);
    expect(out).toMatch(/\nPhase: +Succeeded\n/);
    expect(out).toMatch(/\nStorage: +registry, class team-registry\n/);
    expect(out).toMatch(/\n {2}app +41\.0 MiB +containerd +registry\.example/);
    expect(out).toMatch(/\n {4}Base image: +app:1\n/);
    expect(out).toContain('Pod Template:  recorded: kubectl cryo restore web-warm re-creates the whole pod');
    expect(out).toMatch(/Events:\n {2}TYPE +REASON +AGE +FROM +MESSAGE\n {2}Normal +CheckpointStarted +\d+s +cryo\.dev\/node-agent +checkpointing app of pod web/);
    expect(out).not.toContain('not this one');
  });

  it('says when a Checkpoint has no pod template, and shows a Migration', async () => {
    const old = succeededCheckpoint('old', 'web');
    delete old.status!.podTemplate;
    cluster.api.put(old);
    expect((await cluster.cli(['describe', 'checkpoint', 'old'])).stdout).toContain('not recorded (taken before Cryo recorded pod templates): restore single containers with cryo.dev/restore-from: old');
    const mig = await cluster.cli(['describe', 'mig', 'web-mig']);
    expect(mig.stdout).toMatch(/Target: +node-c\n/);
    expect(mig.stdout).toMatch(/Downtime: +1\.3s\n/);
    expect(mig.stdout).toContain('Events:  <none>');
  });

  it('exits 3 for a missing object and 2 without a name', async () => {
    expect((await cluster.cli(['describe', 'checkpoint', 'nope'])).code).toBe(EXIT.NOT_FOUND);
    const usage = await cluster.cli(['describe', 'checkpoint']);
    expect(usage.code).toBe(EXIT.USAGE);
    expect(usage.stderr).toContain('missing <name>');
  });
});
