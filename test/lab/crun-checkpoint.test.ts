/**
 * The CRIU lab against reality: a Node container run by crun in a pod, checkpointed by CRIU with
 * --leave-running as CRI-O does it, and restored as a copy into another pod with that pod's own
 * /run/cryo directory while the original keeps running.
 */
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Lab, LabContainer, LabPod } from '@cryo/test';
import { openLab, podHttp, waitFor } from '@cryo/test';

interface ServerState {
  counter: number;
  files: string[];
  connected: boolean;
  pid: number;
}

const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;

describe.skipIf(skip !== undefined)(`crun + CRIU in the lab${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  // The body runs at collection even when skipped: only hooks and tests may touch the lab.
  const lab = opened as Lab;
  let script: string;
  let dir: string;
  let podA: LabPod;
  let podB: LabPod;
  let original: LabContainer;
  let copy: LabContainer;
  const call = async (pod: LabPod, method: string, path: string): Promise<ServerState> => (await podHttp(pod.ip, 8080, method, path)).json<ServerState>();
  const showOutputOnFailure = (...containers: (() => LabContainer | undefined)[]) =>
    onTestFailed(async () => {
      for (const c of containers.map((get) => get()).filter((c) => c !== undefined)) console.log(`--- ${c.id} output:\n${await c.output()}`);
    });

  beforeAll(async () => {
    script = join(lab.settings.repoRoot, 'test/lab/fixtures/counter-server.ts');
    dir = await mkdtemp(join(tmpdir(), 'cryo-lab-test-'));
    for (const pod of ['pod-a', 'pod-b']) {
      await mkdir(join(dir, pod));
      await writeFile(join(dir, pod, `marker-${pod}`), pod);
    }
    podA = await lab.createPod('crun-test-a');
    podB = await lab.createPod('crun-test-b');
  });
  afterAll(async () => {
    await lab.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a Node container whose server the host reaches at the pod address', async () => {
    showOutputOnFailure(() => original);
    original = await lab.runContainer({
      id: 'crun-test-original',
      pod: podA,
      argv: [lab.nodeBinary, script],
      mounts: [{ source: join(dir, 'pod-a'), destination: '/run/cryo' }],
    });
    const state = await waitFor(() => call(podA, 'GET', '/state').catch(() => undefined), { timeoutMs: 15_000, what: 'the server in pod A' });
    expect(state).toMatchObject({ counter: 0, files: ['marker-pod-a'], connected: false });
    expect(podA.ip).not.toBe(podB.ip);
  });

  it('checkpoints it with --leave-running, and the original keeps serving', async () => {
    showOutputOnFailure(() => original);
    await call(podA, 'POST', '/counter?value=41');
    const result = await original.checkpoint({ imageDir: join(dir, 'image'), leaveRunning: true });
    expect(result.ok, result.log).toBe(true);
    console.log(`checkpoint of the Node container: ${result.durationMs.toFixed(0)} ms`);
    expect(await original.state()).toBe('running');
    expect(await call(podA, 'POST', '/counter?value=42')).toMatchObject({ counter: 42 });
  });

  it('restores a copy into a second pod that has the checkpointed memory and the second pod’s directory', async () => {
    showOutputOnFailure(() => original, () => copy);
    const restored = await lab.restoreContainer({
      id: 'crun-test-copy',
      pod: podB,
      imageDir: join(dir, 'image'),
      mounts: [{ source: join(dir, 'pod-b'), destination: '/run/cryo' }],
    });
    copy = restored.container;
    console.log(`restore of the Node container: ${restored.durationMs.toFixed(0)} ms`);
    expect(await call(podB, 'GET', '/state')).toMatchObject({ counter: 41, files: ['marker-pod-b'] });
    expect(await call(podA, 'GET', '/state')).toMatchObject({ counter: 42, files: ['marker-pod-a'] });
    expect(copy.pid).not.toBe(original.pid);
    expect(await original.state()).toBe('running');
    // The two are independent from here on.
    await call(podB, 'POST', '/counter?value=7');
    expect((await call(podA, 'GET', '/state')).counter).toBe(42);
  });

  it('refuses to restore a copy into the original’s pod while the original holds the port, naming it', async () => {
    const attempt = lab.restoreContainer({
      id: 'crun-test-clash',
      pod: podA,
      imageDir: join(dir, 'image'),
      mounts: [{ source: join(dir, 'pod-b'), destination: '/run/cryo' }],
    });
    await expect(attempt).rejects.toThrow(/restore\.log:[\s\S]*Address already in use/);
    expect(await call(podA, 'GET', '/state')).toMatchObject({ counter: 42 });
  });

  it('cannot dump a Node process that was allowed io_uring (libuv sets one up per event loop)', async () => {
    const ring = await lab.runContainer({ id: 'crun-test-io-uring', pod: podB, argv: [lab.nodeBinary, '-e', 'setInterval(() => {}, 1000)'], allowIoUring: true });
    showOutputOnFailure(() => ring);
    await waitFor(async () => (await readFile(`/proc/${ring.pid}/maps`, 'utf8')).includes('io_uring'), { what: 'an io_uring mapping' });
    const result = await ring.checkpoint({ imageDir: join(dir, 'image-io-uring') });
    expect(result.ok).toBe(false);
    expect(result.log).toMatch(/anon_inode:\[io_uring\]/);
    await ring.remove();
  });

  it('reaches a unix socket a host process serves in the bind-mounted pod directory, and cannot be dumped while connected to it', async () => {
    showOutputOnFailure(() => original);
    const accepted: net.Socket[] = [];
    const server = net.createServer((socket) => {
      accepted.push(socket);
      socket.on('data', () => socket.end('pong'));
    });
    server.listen(join(dir, 'pod-a', 'agent.sock'));
    await once(server, 'listening');
    try {
      const answer = await podHttp(podA.ip, 8080, 'POST', '/unix?path=/run/cryo/agent.sock');
      expect(answer.json()).toEqual({ reply: 'pong' });
      expect(await call(podA, 'POST', '/unix?path=/run/cryo/agent.sock&hold=1')).toMatchObject({ connected: true });
      const result = await original.checkpoint({ imageDir: join(dir, 'image-unix'), leaveRunning: true });
      expect(result.ok).toBe(false);
      expect(result.log).toMatch(/External socket is used/);
      expect(await call(podA, 'POST', '/disconnect')).toMatchObject({ connected: false });
    } finally {
      for (const socket of accepted) socket.destroy();
      server.close();
    }
  });

  it('fails the checkpoint while the process holds an established TCP connection, naming it', async () => {
    showOutputOnFailure(() => original);
    const accepted: net.Socket[] = [];
    const server = net.createServer((socket) => accepted.push(socket));
    server.listen(0, lab.hostAddress);
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      expect(await call(podA, 'POST', `/connect?host=${lab.hostAddress}&port=${port}`)).toMatchObject({ connected: true });
      await waitFor(() => accepted.length === 1, { what: 'the connection from pod A' });
      const result = await original.checkpoint({ imageDir: join(dir, 'image-tcp'), leaveRunning: true });
      expect(result.ok).toBe(false);
      expect(result.log).toMatch(/Connected TCP socket/);
      // A failed dump leaves the process running, connection included.
      expect(await call(podA, 'GET', '/state')).toMatchObject({ counter: 42, connected: true });
    } finally {
      for (const socket of accepted) socket.destroy();
      server.close();
    }
  });
});
