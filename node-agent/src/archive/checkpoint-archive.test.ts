import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCheckpointArchive, TarWriter, rejectionOf } from '@cryo/test';
import { ArchiveError, criuVersion, readCheckpointArchive } from './checkpoint-archive.ts';

const run = promisify(execFile);
const PODMAN_FIXTURE = fileURLToPath(new URL('../../../test/fixtures/podman-counter/counter-checkpoint.tar.gz', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-archive-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readCheckpointArchive on what the engines write', () => {
  it('reads the Podman fixture (podman container checkpoint --export, gunzipped)', async () => {
    const tarPath = path.join(dir, 'counter-checkpoint.tar');
    await pipeline(createReadStream(PODMAN_FIXTURE), createGunzip(), createWriteStream(tarPath));

    const info = await readCheckpointArchive(tarPath);

    expect(info).toEqual({
      path: tarPath,
      sizeBytes: 308_736,
      containerName: 'cfix',
      baseImage: 'localhost/bb:1',
      baseImageId: 'afa316b3de7cb97624c99b0b7ff3964d86f37f9980c2ec5c93ef585269f5c960',
      runtime: 'crun',
      engine: 'podman',
      // Podman's config.dump has no checkpointedTime: the container's createdTime stands in.
      checkpointedTime: '2026-11-27T09:25:30.10893443Z',
      pod: { name: '', namespace: '', uid: '' },
      // /proc, /dev, /sys, /etc/hosts, /dev/shm, /run/.containerenv, /etc/hostname, /sys/fs/cgroup: all provided by the runtime.
      mountDestinations: [],
      // Podman's export has no dump.log, and stats-dump (protobuf timings) names no version.
      criuVersion: '',
    });
  });

  it('reads a CRI-O archive as the kubelet gets it: pod, container, image, mounts the restore needs, CRIU version', async () => {
    const built = await buildCheckpointArchive({ dir, volumeMounts: ['/data', '/run/cryo'], criuVersion: '4.2.1' });

    const info = await readCheckpointArchive(built.path);

    expect(info).toEqual({
      path: built.path,
      sizeBytes: built.sizeBytes,
      // spec.dump's io.kubernetes.container.name, not config.dump's k8s_app_<pod>_<ns>_<uid>_0.
      containerName: 'app',
      baseImage: built.image,
      baseImageId: built.imageRef,
      runtime: 'crun',
      engine: 'cri-o',
      checkpointedTime: '2026-12-01T10:00:00.123456789Z',
      pod: built.pod,
      mountDestinations: ['/data', '/run/cryo', '/var/run/secrets/kubernetes.io/serviceaccount'],
      criuVersion: '4.2.1',
    });
  });

  it('reads a containerd archive as the kubelet gets it: engine, digest-pinned base image, pod from its annotations, mounts from spec.dump', async () => {
    const built = await buildCheckpointArchive({ dir, engine: 'containerd', volumeMounts: ['/data', '/run/cryo'], criuVersion: '4.2.1' });

    const info = await readCheckpointArchive(built.path);

    expect(info).toEqual({
      path: built.path,
      sizeBytes: built.sizeBytes,
      // spec.dump's io.kubernetes.cri.container-name, not config.dump's app_<pod>_<ns>_<uid>_0.
      containerName: 'app',
      baseImage: 'registry.example/shop/orders-api:1.4.2',
      // What containerd's restore pulls the base image by.
      baseImageId: 'registry.example/shop/orders-api@sha256:3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100',
      runtime: 'io.containerd.runc.v2',
      engine: 'containerd',
      checkpointedTime: '2026-12-01T10:00:00.123456789Z',
      pod: built.pod,
      // No bind.mounts: spec.dump's mounts minus the runtime's and the kubelet's (/etc/hosts, /dev/termination-log).
      mountDestinations: ['/data', '/run/cryo', '/var/run/secrets/kubernetes.io/serviceaccount'],
      criuVersion: '4.2.1',
    });
    expect(built.expectedMountDestinations).toEqual(info.mountDestinations);
  });

  it('tells containerd by any of its marks, and CRI-O and Podman by io.container.manager first', async () => {
    const built = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: 'containerd-marks.tar' });
    const spec = JSON.parse(await readMember(built.path, 'spec.dump'));
    // No io.kubernetes.cri.* annotations: the runtime still says containerd (and status.dump is required).
    const bareSpec = JSON.stringify({ ...spec, annotations: {} });
    const byRuntime = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: 'containerd-by-runtime.tar', contents: { 'spec.dump': bareSpec } });
    expect(await readCheckpointArchive(byRuntime.path)).toMatchObject({
      engine: 'containerd',
      // Then status.dump's metadata and the kubelet's labels name the container and pod.
      containerName: 'app',
      pod: built.pod,
    });
    // Neither annotations nor runtime: status.dump alone.
    const byStatus = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: 'containerd-by-status.tar', runtime: 'runc', contents: { 'spec.dump': bareSpec } });
    expect((await readCheckpointArchive(byStatus.path)).engine).toBe('containerd');
    // containerd's annotations without status.dump or its runtime: still containerd, and refused for the missing file.
    const byAnnotations = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: 'containerd-by-annotations.tar', runtime: 'runc', omit: ['status.dump'] });
    expect((await rejectionOf(readCheckpointArchive(byAnnotations.path), ArchiveError)).message).toContain("containerd wrote this archive (its spec.dump has io.kubernetes.cri.* annotations)");
    // io.container.manager wins over everything else.
    const labelled = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: 'containerd-labelled-crio.tar', contents: { 'spec.dump': JSON.stringify({ ...spec, annotations: { ...spec.annotations, 'io.container.manager': 'cri-o' } }) } });
    expect((await readCheckpointArchive(labelled.path)).engine).toBe('cri-o');
  });

  it('takes the termination message path of a containerd archive from status.dump, where the kubelet\'s annotations are', async () => {
    const built = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: 'containerd-term.tar', volumeMounts: ['/data', '/tmp/term-msg'], serviceAccountToken: false });
    expect((await readCheckpointArchive(built.path)).mountDestinations).toEqual(['/data', '/tmp/term-msg']);
    const status = JSON.parse(await readMember(built.path, 'status.dump'));
    status.annotations['io.kubernetes.container.terminationMessagePath'] = '/tmp/term-msg';
    const rewritten = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: 'containerd-term-2.tar', volumeMounts: ['/data', '/tmp/term-msg'], serviceAccountToken: false, contents: { 'status.dump': JSON.stringify(status) } });
    // The kubelet provides /tmp/term-msg now, and /dev/termination-log is the pod's own.
    expect((await readCheckpointArchive(rewritten.path)).mountDestinations).toEqual(['/data', '/dev/termination-log']);
  });

  it('reads an uncompressed Podman export (--compress=none)', async () => {
    const built = await buildCheckpointArchive({ dir, engine: 'podman', fileName: 'podman-none.tar', volumeMounts: ['/srv/data'] });

    const info = await readCheckpointArchive(built.path);

    expect(info).toMatchObject({ engine: 'podman', containerName: 'app', pod: { name: '', namespace: '', uid: '' }, mountDestinations: ['/srv/data'], criuVersion: '4.2' });
    expect(info.baseImageId).toBe(built.imageRef.replace('sha256:', ''));
  });

  it('reads the same files re-packed by GNU tar, with ./ names, pax or GNU long-name headers', async () => {
    const built = await buildCheckpointArchive({ dir, fileName: 'to-repack.tar' });
    const tree = path.join(dir, 'repack-tree');
    await mkdir(tree);
    await run('tar', ['-xf', built.path, '-C', tree]);
    // A name over 100 bytes needs a pax or GNU extended header.
    const long = `checkpoint/${'x'.repeat(140)}.img`;
    await writeFile(path.join(tree, long), 'long');
    for (const format of ['pax', 'gnu', 'ustar']) {
      const repacked = path.join(dir, `repacked-${format}.tar`);
      const args = format === 'ustar' ? ['--exclude', long] : [];
      await run('tar', [`--format=${format}`, ...args, '-cf', repacked, '-C', tree, '.']);
      const info = await readCheckpointArchive(repacked);
      expect(info, format).toMatchObject({ engine: 'cri-o', containerName: 'app', criuVersion: '4.2', mountDestinations: built.expectedMountDestinations });
    }
  });
});

describe('readCheckpointArchive refuses what cannot be restored', () => {
  it('a gzip-compressed archive, saying how to unpack it', async () => {
    const err = await rejectionOf(readCheckpointArchive(PODMAN_FIXTURE), ArchiveError);
    expect(err.message).toBe(`checkpoint archive ${PODMAN_FIXTURE} is not a tar archive: its first 512 bytes are not a tar header: it is gzip-compressed (gunzip it first)`);
    expect(err.archivePath).toBe(PODMAN_FIXTURE);
  });

  it('an archive cut inside a member, naming the member and how much of it is there', async () => {
    const built = await buildCheckpointArchive({ dir, fileName: 'cut-pages.tar', pagesBytes: 1024 * 1024, truncate: 'inside-pages' });
    const err = await rejectionOf(readCheckpointArchive(built.path), ArchiveError);
    expect(err.message).toBe(
      `checkpoint archive ${built.path} is truncated: member checkpoint/pages-1.img ends at byte 524288 of 1048576; the copy or the checkpoint was cut short, take the checkpoint again`,
    );
  });

  it('an archive cut exactly at a member boundary (no end-of-archive blocks), which most tar readers accept', async () => {
    const built = await buildCheckpointArchive({ dir, fileName: 'cut-end.tar', truncate: 'before-end-blocks' });
    const err = await rejectionOf(readCheckpointArchive(built.path), ArchiveError);
    expect(err.message).toMatch(/is truncated: it ends after member rootfs-diff\.tar without the two end-of-archive blocks \(at byte \d+\)/);
  });

  it('an archive with only one of its two end blocks, or cut inside a header', async () => {
    const full = await buildCheckpointArchive({ dir, fileName: 'full.tar' });
    const oneBlock = await buildCheckpointArchive({ dir, fileName: 'one-block.tar', truncate: { bytes: full.sizeBytes - 512 } });
    expect((await rejectionOf(readCheckpointArchive(oneBlock.path), ArchiveError)).message).toContain('is truncated: it ends after the first of its two end-of-archive blocks');
    const inHeader = await buildCheckpointArchive({ dir, fileName: 'in-header.tar', truncate: { bytes: full.members['dump.log'].dataOffset - 100 } });
    expect((await rejectionOf(readCheckpointArchive(inHeader.path), ArchiveError)).message).toContain('is truncated: it ends inside the header after member stats-dump');
  });

  it('a file that is not a tar, an empty file, a directory, a path that does not exist', async () => {
    const text = path.join(dir, 'notes.txt');
    await writeFile(text, 'just some notes\n'.repeat(100));
    expect((await rejectionOf(readCheckpointArchive(text), ArchiveError)).message).toBe(`checkpoint archive ${text} is not a tar archive: its first 512 bytes are not a tar header`);
    const empty = path.join(dir, 'empty.tar');
    await writeFile(empty, '');
    expect((await rejectionOf(readCheckpointArchive(empty), ArchiveError)).message).toBe(`checkpoint archive ${empty} is not a tar archive: the file is empty`);
    expect((await rejectionOf(readCheckpointArchive(dir), ArchiveError)).message).toContain('is not a regular file');
    expect((await rejectionOf(readCheckpointArchive(path.join(dir, 'gone.tar')), ArchiveError)).message).toContain('does not exist');
  });

  it('a tar without config.dump', async () => {
    const built = await buildCheckpointArchive({ dir, fileName: 'no-config.tar', omit: ['config.dump'] });
    expect((await rejectionOf(readCheckpointArchive(built.path), ArchiveError)).message).toBe(`checkpoint archive ${built.path} has no config.dump: not a CRI-O, containerd or Podman checkpoint archive`);
  });

  it('a tar of any other files', async () => {
    const other = path.join(dir, 'other.tar');
    await run('tar', ['-cf', other, '-C', path.dirname(PODMAN_FIXTURE), 'README.txt']);
    expect((await rejectionOf(readCheckpointArchive(other), ArchiveError)).message).toContain('has no config.dump: not a CRI-O, containerd or Podman checkpoint archive');
  });

  it('an archive without its CRIU images or spec', async () => {
    for (const [member, message] of [
      ['checkpoint/inventory.img', 'has no checkpoint/inventory.img: its CRIU images (checkpoint/) are missing or incomplete, so there is nothing to restore'],
      ['checkpoint/pstree.img', 'has no checkpoint/pstree.img'],
      ['spec.dump', 'has no spec.dump: no engine can restore a container without its OCI spec'],
    ]) {
      const built = await buildCheckpointArchive({ dir, fileName: `no-${path.basename(member)}.tar`, omit: [member] });
      expect((await rejectionOf(readCheckpointArchive(built.path), ArchiveError)).message, member).toContain(message);
    }
  });

  it('a containerd archive without status.dump, which containerd cannot restore', async () => {
    const built = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: 'containerd-no-status.tar', omit: ['status.dump'] });
    expect((await rejectionOf(readCheckpointArchive(built.path), ArchiveError)).message).toBe(
      `checkpoint archive ${built.path} has no status.dump, which containerd's restore needs (the container's CRI status: metadata, labels, annotations): containerd wrote this archive (its config.dump names the runtime io.containerd.runc.v2) but it is incomplete; take the checkpoint again`,
    );
  });

  it('a containerd archive whose status.dump is not a JSON object', async () => {
    for (const [content, message] of [
      ['{"id": ', 'has an invalid status.dump: '],
      ['["app"]', 'has a status.dump that is not a JSON object (a CRI ContainerStatus)'],
    ]) {
      const built = await buildCheckpointArchive({ dir, engine: 'containerd', fileName: `containerd-bad-status-${content.length}.tar`, contents: { 'status.dump': content } });
      expect((await rejectionOf(readCheckpointArchive(built.path), ArchiveError)).message, content).toContain(`checkpoint archive ${built.path} ${message}`);
    }
  });

  it('config.dump, spec.dump or bind.mounts that are not the JSON they must be', async () => {
    const cases: [string, string, string][] = [
      ['config.dump', '{"id": "abc", ', 'has an invalid config.dump: '],
      ['spec.dump', 'not json at all', 'has an invalid spec.dump: '],
      ['config.dump', '[1, 2]', 'has a config.dump that is not a JSON object'],
      ['bind.mounts', '{"destination": "/data"}', 'has a bind.mounts that is not a JSON array'],
    ];
    for (const [member, content, message] of cases) {
      const built = await buildCheckpointArchive({ dir, fileName: `bad-${member}-${cases.findIndex((c) => c[1] === content)}.tar`, contents: { [member]: content } });
      expect((await rejectionOf(readCheckpointArchive(built.path), ArchiveError)).message, `${member}: ${content}`).toContain(`checkpoint archive ${built.path} ${message}`);
    }
  });

  it('a config.dump too big to be one (instead of reading it into memory)', async () => {
    const huge = path.join(dir, 'huge-config.tar');
    const file = await open(huge, 'w');
    const tar = new TarWriter(file);
    await tar.randomFile('config.dump', 9 * 1024 * 1024);
    await tar.end();
    await file.close();
    expect((await rejectionOf(readCheckpointArchive(huge), ArchiveError)).message).toContain('has a config.dump of 9437184 bytes, more than the 8388608 any container');
  });
});

describe('readCheckpointArchive details', () => {
  it('leaves criuVersion empty without a dump.log and finds it in checkpoint/dump.log', async () => {
    const none = await buildCheckpointArchive({ dir, fileName: 'no-log.tar', criuVersion: null });
    expect((await readCheckpointArchive(none.path)).criuVersion).toBe('');
    expect(criuVersion('(00.000000) Version: 4.2 (gitid v4.2)\n')).toBe('4.2');
    expect(criuVersion('(00.000011) Running on x\nVersion: 3.19-dirty (gitid 0)\n')).toBe('3.19-dirty');
    expect(criuVersion('(00.000011) no version here\n')).toBe('');
  });

  it('leaves out the mounts the kubelet adds itself, at the container\'s own terminationMessagePath', async () => {
    const built = await buildCheckpointArchive({ dir, fileName: 'custom-term.tar', volumeMounts: ['/data', '/tmp/term-msg'], serviceAccountToken: false });
    const info = await readCheckpointArchive(built.path);
    expect(info.mountDestinations).toEqual(['/data', '/tmp/term-msg']);
    // With the annotation naming /tmp/term-msg, the kubelet provides that one, and /dev/termination-log (in spec order) is the pod's own.
    const spec = JSON.parse(await readMember(built.path, 'spec.dump'));
    spec.annotations['io.kubernetes.container.terminationMessagePath'] = '/tmp/term-msg';
    const rewritten = await buildCheckpointArchive({ dir, fileName: 'custom-term-2.tar', volumeMounts: ['/data', '/tmp/term-msg'], serviceAccountToken: false, contents: { 'spec.dump': JSON.stringify(spec) } });
    expect((await readCheckpointArchive(rewritten.path)).mountDestinations).toEqual(['/dev/termination-log', '/data']);
  });

  it('takes the mounts from bind.mounts only when spec.dump has none', async () => {
    const built = await buildCheckpointArchive({ dir, fileName: 'spec-without-mounts.tar', volumeMounts: ['/data'], serviceAccountToken: false });
    const spec = JSON.parse(await readMember(built.path, 'spec.dump'));
    delete spec.mounts;
    const rewritten = await buildCheckpointArchive({ dir, fileName: 'spec-without-mounts-2.tar', volumeMounts: ['/data'], serviceAccountToken: false, contents: { 'spec.dump': JSON.stringify(spec) } });
    // bind.mounts lists /etc/resolv.conf, /etc/hostname, /etc/hosts, /dev/termination-log and /data; the first four are provided.
    expect((await readCheckpointArchive(rewritten.path)).mountDestinations).toEqual(['/data']);
  });

  it('reads a 256 MiB archive in one pass without its memory growing', async () => {
    const big = await buildCheckpointArchive({ dir, fileName: 'big.tar', pagesBytes: 256 * 1024 * 1024 });
    global.gc?.();
    const before = process.memoryUsage();
    const started = performance.now();
    const info = await readCheckpointArchive(big.path);
    const ms = performance.now() - started;
    const after = process.memoryUsage();
    expect(info.sizeBytes).toBeGreaterThan(256 * 1024 * 1024);
    expect(info.containerName).toBe('app');
    // The pages are skipped by offset, not read: the heap and the buffers stay where they were...
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(4 * 1024 * 1024);
    expect(after.rss - before.rss).toBeLessThan(32 * 1024 * 1024);
    // ...and it takes a few reads, not a pass over 256 MiB.
    expect(ms).toBeLessThan(500);
    await rm(big.path);
  });
});

async function readMember(archive: string, member: string): Promise<string> {
  const { stdout } = await run('tar', ['-xOf', archive, member], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}
