/**
 * Checkpoint archives for the registry store's tests and benchmark: the real Podman fixture
 * (gunzipped: the store takes uncompressed tars), the fixture with a large random pages file
 * appended (GNU tar -r), and synthetic archives in CRI-O's layout with incompressible pages of
 * any size. Random bytes come from AES-CTR over zeros: incompressible, and several times faster
 * than the system's random source for gigabytes.
 */
import { fileURLToPath } from 'node:url';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import type { CheckpointArchiveInfo } from '@cryo/node-agent';
import { runCommand } from '@cryo/test';

export const PODMAN_FIXTURE_DIR = fileURLToPath(new URL('../fixtures/podman-counter', import.meta.url));
export const PODMAN_FIXTURE_ARCHIVE = join(PODMAN_FIXTURE_DIR, 'counter-checkpoint.tar.gz');
export const PODMAN_BASE_IMAGE = join(PODMAN_FIXTURE_DIR, 'base-image-bb1.oci.tar');

async function checked(argv: string[], timeoutMs = 120_000): Promise<string> {
  const result = await runCommand(argv, { timeoutMs });
  if (result.code !== 0) throw new Error(`exit ${result.code}: ${argv.join(' ')}\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** The Podman fixture as an uncompressed tar at `dest`. */
export async function gunzipFixture(dest: string): Promise<string> {
  await pipeline(createReadStream(PODMAN_FIXTURE_ARCHIVE), createGunzip(), createWriteStream(dest));
  return dest;
}

/** Writes `bytes` incompressible bytes to `path`. */
export async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  function* chunks() {
    for (let left = bytes; left > 0; left -= zeros.length) yield cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
  }
  await pipeline(Readable.from(chunks()), createWriteStream(path));
}

/** A copy of `source` with `checkpoint/pages-99.img` of `bytes` random bytes appended. */
export async function withExtraPages(source: string, dest: string, bytes: number): Promise<string> {
  const work = await mkdtemp(join(dirname(dest), 'pages-'));
  try {
    await mkdir(join(work, 'checkpoint'));
    await writeRandomFile(join(work, 'checkpoint/pages-99.img'), bytes);
    await copyFile(source, dest);
    await checked(['tar', '--owner=0', '--group=0', '-rf', dest, '-C', work, 'checkpoint/pages-99.img']);
    return dest;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * An archive in CRI-O's layout (config.dump, spec.dump, bind.mounts, checkpoint/ with
 * inventory and pages) whose pages are `pagesBytes` random bytes; made once per path: an
 * archive already there is reused.
 */
export async function syntheticCrioArchive(path: string, pagesBytes: number): Promise<string> {
  if (existsSync(path)) return path;
  await mkdir(dirname(path), { recursive: true });
  const work = await mkdtemp(`${path}.work-`);
  try {
    const config = {
      id: randomBytes(32).toString('hex'),
      name: 'k8s_app_bench-0_default_0f3d6c1e-0000-4000-8000-000000000001_0',
      rootfsImage: '127.0.0.1:5000/bench/app:1',
      rootfsImageRef: randomBytes(32).toString('hex'),
      rootfsImageName: '127.0.0.1:5000/bench/app:1',
      runtime: 'runc',
      createdTime: '2026-12-01T10:00:00Z',
      checkpointedTime: '2026-12-01T10:05:00Z',
      restored: false,
    };
    const spec = {
      ociVersion: '1.0.2',
      annotations: {
        'io.kubernetes.pod.name': 'bench-0',
        'io.kubernetes.pod.namespace': 'default',
        'io.kubernetes.pod.uid': '0f3d6c1e-0000-4000-8000-000000000001',
        'io.kubernetes.container.name': 'app',
      },
      mounts: [],
    };
    await writeFile(join(work, 'config.dump'), JSON.stringify(config));
    await writeFile(join(work, 'spec.dump'), JSON.stringify(spec));
    await writeFile(join(work, 'bind.mounts'), '[]');
    await mkdir(join(work, 'checkpoint'));
    await writeFile(join(work, 'checkpoint/inventory.img'), randomBytes(64));
    await writeRandomFile(join(work, 'checkpoint/pages-1.img'), pagesBytes);
    await checked(['tar', '--owner=0', '--group=0', '-cf', `${path}.part`, '-C', work, 'config.dump', 'spec.dump', 'bind.mounts', 'checkpoint'], 600_000);
    await rename(`${path}.part`, path);
    return path;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash);
  return `sha256:${hash.digest('hex')}`;
}

/** The sha256 of what a zstd file decompresses to (a compressed layer's diff_id). */
export async function sha256OfZstdFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), createZstdDecompress(), hash);
  return `sha256:${hash.digest('hex')}`;
}

export async function member(archive: string, name: string): Promise<string | undefined> {
  const result = await runCommand(['tar', '-xOf', archive, name]);
  return result.code === 0 ? result.stdout : undefined;
}

/**
 * What the agent knows about an archive, read here with tar and JSON.parse (the agent's own
 * reader is node-agent/src/archive; these tests are about the store, not the reader).
 */
export async function archiveInfoOf(path: string): Promise<CheckpointArchiveInfo> {
  const config = JSON.parse((await member(path, 'config.dump')) ?? '{}') as Record<string, unknown>;
  const spec = JSON.parse((await member(path, 'spec.dump')) ?? '{}') as { annotations?: Record<string, string> };
  const annotations = spec.annotations ?? {};
  const isCrio = annotations['io.kubernetes.pod.name'] !== undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  return {
    path,
    sizeBytes: (await stat(path)).size,
    containerName: isCrio ? (annotations['io.kubernetes.container.name'] ?? str(config.name)) : str(config.name),
    baseImage: str(config.rootfsImageName),
    baseImageId: str(config.rootfsImageRef) || str(config.rootfsImageID),
    runtime: str(config.runtime),
    engine: isCrio ? 'cri-o' : 'podman',
    checkpointedTime: str(config.checkpointedTime) || str(config.createdTime),
    pod: { name: annotations['io.kubernetes.pod.name'] ?? '', namespace: annotations['io.kubernetes.pod.namespace'] ?? '', uid: annotations['io.kubernetes.pod.uid'] ?? '' },
    mountDestinations: [],
    criuVersion: '',
  };
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}
