/**
 * The node agent reads and deletes only kubelet archives that are regular files in
 * --kubelet-checkpoints-dir, whatever path the kubelet answers: the whole agent (startNodeAgent)
 * against the shared fake kube-apiserver and the shared kubelet stand-in (agent-on-fakes.ts), whose answers are set
 * per test (`failNext` with a 200 body: the kubelet's exact answer shape, with a path of the
 * test's choosing). No lab needed: no container is dumped.
 */
import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCheckpointArchive } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

describe('the node agent confines kubelet archives to --kubelet-checkpoints-dir', () => {
  let fakes: AgentOnFakes;
  let checkpointsDir: string;
  let outside: string;

  beforeAll(async () => {
    fakes = await startAgentOnFakes('cryo-agent-archive-paths-');
    checkpointsDir = fakes.checkpointsDir;
    outside = join(fakes.dir, 'outside');
    await mkdir(outside);
  });

  afterAll(async () => {
    await fakes?.stop();
  });

  const checkpointAnswering = (name: string, archivePath: string) => fakes.checkpointAnswering(name, archivePath);

  const refusedMessage = (answered: string) =>
    `the archive of container "app" was refused, so nothing was stored and the app resumed: the kubelet answered the archive path "${answered}", which the agent does not read or delete: `;

  it('reads, stores and then deletes a regular file in the directory', async () => {
    const archive = await buildCheckpointArchive({ dir: checkpointsDir, pod: fakes.pod, containerName: 'app' });
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
