import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointArchive } from '../../../node-agent/src/archive/checkpoint-archive.ts';
import type { LabContainer } from '../harness/lab/lab-container.ts';
import { buildSpec } from '../harness/lab/oci-spec.ts';
import { writeContainerdCheckpointArchive } from './containerd-checkpoint-archive.ts';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cryo-containerd-archive-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What LabContainer.checkpoint leaves in its image directory, without CRIU: the lab's spec and stand-ins for CRIU's files. */
async function labCheckpoint(): Promise<{ container: LabContainer; workDir: string }> {
  const workDir = join(dir, 'work');
  const images = join(workDir, 'checkpoint');
  const bundleDir = join(dir, 'bundle');
  await mkdir(images, { recursive: true });
  await mkdir(bundleDir);
  const spec = buildSpec({
    id: 'lab-app',
    hostname: 'orders-0',
    rootfs: '/var/lib/cryo-lab/root',
    netnsPath: '/run/netns/cryo-lab-orders-0',
    argv: ['/bin/sleep', 'infinity'],
    env: {},
    cwd: '/',
    binds: [
      { source: '/host/tmp/volumes/data', destination: '/data' },
      { source: '/host/work/main', destination: '/work/main', readonly: true },
    ],
  });
  await writeFile(join(bundleDir, 'config.json'), JSON.stringify(spec));
  await writeFile(join(images, 'spec.dump'), JSON.stringify(spec, null, 2));
  await writeFile(join(images, 'inventory.img'), Buffer.from('5443565419a0b3c2', 'hex'));
  await writeFile(join(images, 'pstree.img'), Buffer.from('54435654d42a7c5f', 'hex'));
  await writeFile(join(images, 'pages-1.img'), Buffer.alloc(8192, 1));
  await writeFile(join(images, 'dump.log'), '(00.000000) Version: 4.2.1 (gitid v4.2.1)\n');
  await writeFile(join(images, 'stats-dump'), Buffer.from('4059105506', 'hex'));
  const logFile = join(dir, 'app.log');
  await writeFile(logFile, 'started\n');
  const container = { id: 'lab-app', pid: 4242, bundleDir, logFile, pod: { ip: '10.89.0.7' } } as Partial<LabContainer> as LabContainer;
  return { container, workDir };
}

describe('writeContainerdCheckpointArchive', () => {
  it('packs a lab checkpoint as containerd 2.1 does, and the agent reads it as containerd\'s', async () => {
    const { container, workDir } = await labCheckpoint();
    const archive = join(dir, 'checkpoint-orders-0_shop-app-2026-12-01T10:00:00Z.tar');
    const pod = { namespace: 'shop', pod: 'orders-0', podUid: '0d3c6f2e-1b7a-4c59-8e2d-5f6a7b8c9d0e', container: 'app' };

    await writeContainerdCheckpointArchive({ ...pod, lab: container, image: '127.0.0.1:5000/shop/orders:1' }, workDir, archive, new Date('2026-12-01T10:00:00Z'));

    expect((await stat(archive)).mode & 0o777).toBe(0o600);
    const { stdout } = await run('tar', ['-tf', archive]);
    // Name order, as containerd's archive.Diff walks its directory; no bind.mounts, no deleted.files.
    expect(stdout.trim().split('\n')).toEqual([
      'checkpoint/',
      'checkpoint/inventory.img',
      'checkpoint/pages-1.img',
      'checkpoint/pstree.img',
      'config.dump',
      'container.log',
      'dump.log',
      'rootfs-diff.tar',
      'spec.dump',
      'stats-dump',
      'status',
      'status.dump',
    ]);
    const member = async (name: string) => (await run('tar', ['-xOf', archive, name], { encoding: 'buffer' })).stdout;
    // rootfs-diff.tar is a gzip-compressed tar.
    expect(gunzipSync(await member('rootfs-diff.tar')).length % 512).toBe(0);
    expect(JSON.parse((await member('config.dump')).toString())).toMatchObject({
      name: 'app_orders-0_shop_0d3c6f2e-1b7a-4c59-8e2d-5f6a7b8c9d0e_0',
      rootfsImageName: '127.0.0.1:5000/shop/orders:1',
      rootfsImageRef: expect.stringMatching(/^127\.0\.0\.1:5000\/shop\/orders@sha256:[0-9a-f]{64}$/),
      runtime: 'io.containerd.runc.v2',
    });
    const status = JSON.parse((await member('status.dump')).toString());
    expect(status).toMatchObject({ metadata: { name: 'app' }, state: 1, labels: { 'io.kubernetes.pod.name': 'orders-0' } });
    // The CRI mounts, with the host's paths for their sources.
    expect(status.mounts).toEqual([
      { container_path: '/data', host_path: '/tmp/volumes/data' },
      { container_path: '/work/main', host_path: '/work/main', readonly: true },
    ]);
    expect(JSON.parse((await member('status')).toString())).toMatchObject({ Version: 'v1', Pid: 4242 });
    expect((await member('container.log')).toString()).toBe(await readFile(container.logFile, 'utf8'));

    const info = await readCheckpointArchive(archive);
    expect(info).toMatchObject({
      engine: 'containerd',
      containerName: 'app',
      pod: { name: 'orders-0', namespace: 'shop', uid: '0d3c6f2e-1b7a-4c59-8e2d-5f6a7b8c9d0e' },
      baseImage: '127.0.0.1:5000/shop/orders:1',
      baseImageId: status.image_ref,
      runtime: 'io.containerd.runc.v2',
      criuVersion: '4.2.1',
      // The lab's spec: a /tmp tmpfs and its two binds; /dev/shm and the rest are the runtime's.
      mountDestinations: ['/tmp', '/data', '/work/main'],
    });
  });
});
