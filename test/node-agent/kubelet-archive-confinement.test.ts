/**
 * The node agent reads and deletes only kubelet archives that are regular files in
 * --kubelet-checkpoints-dir, whatever path the kubelet answers: the whole agent (startNodeAgent)
 * against the shared fake kube-apiserver and the shared kubelet stand-in, whose answers are set
 * per test (`failNext` with a 200 body: the kubelet's exact answer shape, with a path of the
 * test's choosing). No lab needed: no container is dumped.
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type Checkpoint } from '@cryo/common';
import { readNodeAgentConfig, startNodeAgent, type RunningNodeAgent } from '../../node-agent/src/index.ts';
import { buildCheckpointArchive, FakeKubeApiServer, FakeKubelet, waitFor } from '../src/index.ts';

const TOKEN = 'node-agent-sa-token';

describe('the node agent confines kubelet archives to --kubelet-checkpoints-dir', () => {
  let dir: string;
  let api: FakeKubeApiServer;
  let kubelet: FakeKubelet;
  let agent: RunningNodeAgent;
  let checkpointsDir: string;
  let storeDir: string;
  let outside: string;
  const podUid = randomUUID();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-agent-archive-paths-'));
    checkpointsDir = join(dir, 'kubelet', 'checkpoints');
    storeDir = join(dir, 'store');
    outside = join(dir, 'outside');
    await mkdir(outside);
    api = await FakeKubeApiServer.start();
    kubelet = await FakeKubelet.start({ checkpointsDir, token: TOKEN });
    await writeFile(join(dir, 'token'), TOKEN);
    await writeFile(join(dir, 'kubelet-ca.crt'), kubelet.caPem);
    api.put({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'orders-0', namespace: 'shop', uid: podUid },
      spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'shop/orders:1' }] },
      status: { phase: 'Running', containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'shop/orders:1', imageID: '', state: { running: {} } }] },
    });
    const flags = [
      '--node-name', 'node-a', '--host-hooks-dir', join(dir, 'hooks'), '--port', '0',
      '--kubelet-url', kubelet.url, '--kubelet-ca-file', join(dir, 'kubelet-ca.crt'), '--token-file', join(dir, 'token'),
      '--kubelet-checkpoints-dir', checkpointsDir, '--directory', storeDir, '--directory-registry-address', '',
    ];
    agent = await startNodeAgent(readNodeAgentConfig(flags, {}), { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1' });
  });

  afterAll(async () => {
    await agent?.stop();
    await kubelet?.close();
    await api?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The kubelet answers `archivePath` for the next checkpoint; the Checkpoint's end state. */
  async function checkpointAnswering(name: string, archivePath: string): Promise<Checkpoint> {
    kubelet.failNext({ status: 200, body: JSON.stringify({ items: [archivePath] }) });
    api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: 'shop' }, spec: { podName: 'orders-0' } });
    return waitFor(
      () => {
        const current: Checkpoint | undefined = api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', name);
        return current?.status?.phase === 'Succeeded' || current?.status?.phase === 'Failed' ? current : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: `Checkpoint ${name} to finish` },
    );
  }

  const refusedMessage = (answered: string) =>
    `the archive of container "app" was refused, so nothing was stored and the app resumed: the kubelet answered the archive path "${answered}", which the agent does not read or delete: `;

  it('reads, stores and then deletes a regular file in the directory', async () => {
    const archive = await buildCheckpointArchive({ dir: checkpointsDir, pod: { name: 'orders-0', namespace: 'shop', uid: podUid }, containerName: 'app' });
    const done = await checkpointAnswering('orders-good', archive.path);
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    expect(done.status?.containers?.[0]).toMatchObject({ name: 'app', sizeBytes: archive.sizeBytes });
    expect(await readdir(checkpointsDir)).toEqual([]);
  });

  it('fails a Checkpoint whose kubelet answers a file elsewhere on the host, and leaves it alone', async () => {
    // A stand-in for /etc/passwd: a regression must not cost the machine running the tests its files.
    const hostFile = join(outside, 'passwd');
    await writeFile(hostFile, 'root:x:0:0:root:/root:/bin/sh\n');
    const before = await stat(hostFile);
    const failed = await checkpointAnswering('orders-passwd', hostFile);
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.message).toBe(
      `${refusedMessage(hostFile)}it is not in --kubelet-checkpoints-dir ${checkpointsDir}. ` +
        `The kubelet writes archives as regular files in its checkpoints directory; --kubelet-checkpoints-dir must be that directory (${checkpointsDir}), mounted at the same path`,
    );
    const after = await stat(hostFile);
    expect([after.ino, after.size, after.mtimeMs]).toEqual([before.ino, before.size, before.mtimeMs]);
  });

  it('fails a Checkpoint whose archive path escapes with ../, deleting nothing', async () => {
    await writeFile(join(outside, 'escape.tar'), 'not the kubelet’s');
    const answered = `${checkpointsDir}/../../outside/escape.tar`;
    const failed = await checkpointAnswering('orders-dotdot', answered);
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.message).toContain(refusedMessage(answered));
    expect(failed.status?.message).toContain(`it is not in --kubelet-checkpoints-dir ${checkpointsDir}`);
    expect(await readFile(join(outside, 'escape.tar'), 'utf8')).toBe('not the kubelet’s');
  });

  it('fails a Checkpoint whose archive is a symlink in the directory pointing outside; neither the link nor its target is deleted', async () => {
    await writeFile(join(outside, 'target.tar'), 'not the kubelet’s');
    const link = join(checkpointsDir, 'checkpoint-orders-0_shop-app-link.tar');
    await symlink(join(outside, 'target.tar'), link);
    const failed = await checkpointAnswering('orders-symlink', link);
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.message).toContain(`${refusedMessage(link)}it is a symbolic link.`);
    expect(await readFile(join(outside, 'target.tar'), 'utf8')).toBe('not the kubelet’s');
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
  });

  it('fails a Checkpoint whose archive is under a symlinked subdirectory pointing outside', async () => {
    await writeFile(join(outside, 'through.tar'), 'not the kubelet’s');
    await symlink(outside, join(checkpointsDir, 'sub'));
    const answered = join(checkpointsDir, 'sub', 'through.tar');
    const failed = await checkpointAnswering('orders-subdir', answered);
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.message).toContain(`(its directory resolves to ${outside})`);
    expect(await readFile(join(outside, 'through.tar'), 'utf8')).toBe('not the kubelet’s');
    expect((await readdir(outside)).sort()).toEqual(['escape.tar', 'passwd', 'target.tar', 'through.tar']);
  });
});
