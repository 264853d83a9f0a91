/**
 * Archives a real kubelet wrote (test/fixtures/real-kubelet/README.txt), read as the agent reads
 * every archive: the layouts the runtimes really write, not the ones the test fakes lay out.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCheckpointArchive } from './checkpoint-archive.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/real-kubelet/${name}`, import.meta.url));

describe('archives a real kubelet wrote', () => {
  it("reads containerd 2.1's: engine, container, pod, the digest-pinned base image its restore pulls, CRIU's version", async () => {
    const info = await readCheckpointArchive(fixture('containerd-2.1.9-counter.tar'));
    expect(info).toMatchObject({
      engine: 'containerd',
      runtime: 'io.containerd.runc.v2',
      containerName: 'c',
      pod: { name: 'counter', namespace: 'default', uid: '42ca717a-8393-40bc-826c-aea2c00b6561' },
      baseImage: '127.0.0.1:5000/cryo/busybox:1',
      criuVersion: '4.2.1',
    });
    expect(info.baseImageId).toMatch(/^127\.0\.0\.1:5000\/cryo\/busybox@sha256:[0-9a-f]{64}$/);
    // Only the kubelet's own files were mounted (/etc/hosts, /etc/hostname, …): nothing the restore must give back.
    expect(info.mountDestinations).toEqual([]);
  });

  it("reads CRI-O 1.34's: engine, container, pod, base image, CRIU's version", async () => {
    const info = await readCheckpointArchive(fixture('crio-1.34.11-counter.tar'));
    expect(info).toMatchObject({
      engine: 'cri-o',
      runtime: 'crun',
      containerName: 'c',
      pod: { name: 'counter', namespace: 'default', uid: 'd19d11cc-896a-49d8-a8d4-0faec8d99312' },
      baseImage: '127.0.0.1:5000/cryo-test/busybox:1',
      criuVersion: '4.2.1',
    });
    // CRI-O records the image's id, not a pullable reference; its restore pulls by the name.
    expect(info.baseImageId).toMatch(/^[0-9a-f]{64}$/);
    expect(info.mountDestinations).toEqual([]);
  });
});
