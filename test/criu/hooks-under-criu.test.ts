/**
 * The hook channel proven under real CRIU (issue 3): a Node app using the SDK runs in a crun
 * container in a lab pod, holding an established TCP connection to an upstream outside its
 * process tree, an interval timer and an HTTP server. The node agent's hook server (in this test
 * process) runs prepare → CRIU dump (--leave-running, as CRI-O) → finish, and a copy is restored
 * into a second pod with that pod's own hook socket directory while the original keeps running.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { silentLogger } from '@cryo/common';
import { HookServer, type HookPod } from '@cryo/node-agent';
import type { Lab, LabContainer, LabPod, LineEchoUpstream } from '@cryo/test';
import { openLab, podHttp, startLineEchoUpstream, waitFor } from '@cryo/test';

interface AppState {
  value: number;
  ticks: number;
  lastOutcome: string | null;
  restoreCount: number;
  hostname: string;
  events: string[];
}

const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;

describe.skipIf(skip !== undefined)(`hooks under real CRIU${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  const lab = opened as Lab;
  const script = join(lab.settings.repoRoot, 'test/criu/fixtures/hooked-service.ts');
  let dir: string;
  let hooksDir: string;
  let server: HookServer;
  let upstream: LineEchoUpstream;
  const labPods = new Map<string, LabPod>();
  const hookPods = new Map<string, HookPod>();
  const containers: LabContainer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-hooks-criu-'));
    hooksDir = join(dir, 'hooks');
    await mkdir(hooksDir);
    server = new HookServer({ hostHooksDir: hooksDir, logger: silentLogger() });
    // The upstream: on the lab bridge, in the host's network namespace.
    upstream = await startLineEchoUpstream(lab.hostAddress);
  });

  afterAll(async () => {
    await lab.close();
    await server.close();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const openUpstreams = () => upstream.openConnections();
  const state = async (pod: LabPod): Promise<AppState> => (await podHttp(pod.ip, 8080, 'GET', '/state')).json<AppState>();
  const reachable = (pod: LabPod, what: string, probe: (s: AppState) => boolean = () => true) =>
    waitFor(() => state(pod).then((s) => (probe(s) ? s : undefined), () => undefined), { timeoutMs: 20_000, intervalMs: 50, what });

  async function pod(name: string): Promise<{ lab: LabPod; hook: HookPod; socketDir: string }> {
    const labPod = await lab.createPod(name);
    const hookPod: HookPod = { uid: randomUUID(), name, namespace: 'shop' };
    labPods.set(name, labPod);
    hookPods.set(name, hookPod);
    await server.addPod(hookPod);
    return { lab: labPod, hook: hookPod, socketDir: join(hooksDir, hookPod.uid) };
  }

  async function startApp(name: string, env: Record<string, string> = {}) {
    const p = await pod(name);
    const container = await lab.runContainer({
      id: name,
      pod: p.lab,
      argv: [lab.nodeBinary, script],
      cwd: lab.settings.repoRoot,
      env: {
        PORT: '8080',
        UPSTREAM: upstream.address,
        CRYO_HOOK_SOCKET: '/run/cryo/agent.sock',
        CRYO_POD_UID: p.hook.uid,
        CRYO_CONTAINER_NAME: 'app',
        ...env,
      },
      // As the webhook mounts it: the pod's own directory of the agent's hook directory at /run/cryo.
      mounts: [{ source: p.socketDir, destination: '/run/cryo' }],
    });
    containers.push(container);
    onTestFailed(async () => {
      for (const c of containers) console.log(`--- ${c.id} output:\n${await c.output()}`);
    });
    await reachable(p.lab, `the app in ${name}`);
    await waitFor(() => server.sessions(p.hook.uid).length === 1, { what: `the hook session of ${name}`, timeoutMs: 10_000 });
    return { ...p, container };
  }

  let imageDir: string;
  let originalPod: LabPod;

  it('1. prepare → dump → finish: hooks ran, the dump succeeded, the original resumed and works', async () => {
    const app = await startApp('hooks-original');
    originalPod = app.lab;
    await podHttp(app.lab.ip, 8080, 'POST', '/value?v=42');
    expect(openUpstreams()).toBe(1);

    const prepared = await server.prepare(app.hook.uid, { checkpointId: 'shop/warm-1', reason: 'fast start', timeoutMs: 10_000 });
    expect(prepared).toMatchObject({ status: 'ready', sessions: [{ container: 'app' }] });
    // The hooks closed the upstream connection and the server; nothing holds a socket CRIU refuses.
    await waitFor(() => openUpstreams() === 0, { what: 'the upstream connection to close' });
    const ticksBefore = await state(app.lab).catch(() => null);
    expect(ticksBefore).toBeNull(); // not listening during the checkpoint

    imageDir = join(dir, 'image');
    const dump = await app.container.checkpoint({ imageDir, leaveRunning: true });
    expect(dump.ok, dump.log).toBe(true);
    await server.finish(app.hook.uid, 'shop/warm-1', 'done');

    const resumed = await reachable(app.lab, 'the original to serve again', (s) => s.lastOutcome === 'resumed');
    expect(resumed).toMatchObject({ value: 42, restoreCount: 0 });
    expect(resumed.events).toEqual(['connected welcome', 'before shop/warm-1', 'connected resumed', 'after shop/warm-1 resumed 0']);
    expect((await podHttp(app.lab.ip, 8080, 'GET', '/upstream')).json()).toEqual({ answer: 'pong 42' });
    expect(openUpstreams()).toBe(1);
    // The timer runs again.
    const later = await reachable(app.lab, 'ticks to advance', (s) => s.ticks > resumed.ticks);
    expect(later.ticks).toBeGreaterThan(resumed.ticks);
  }, 90_000);

  it('3. a copy restored into another pod reconnects, is told it was restored, reopens its connection and serves the checkpointed state', async () => {
    expect(imageDir, 'test 1 made the checkpoint').toBeDefined();
    await podHttp(originalPod.ip, 8080, 'POST', '/value?v=43');
    const target = await pod('hooks-copy');
    const restoredAt = new Promise<number>((resolve) =>
      server.on('session', (hookPod, _session, answer) => {
        if (hookPod.uid === target.hook.uid && answer.type === 'restored') resolve(performance.now());
      }),
    );
    const { container: copy, durationMs } = await lab.restoreContainer({
      id: 'hooks-copy',
      pod: target.lab,
      imageDir,
      mounts: [{ source: target.socketDir, destination: '/run/cryo' }],
    });
    containers.push(copy);
    const restoreReturned = performance.now();
    const sessionAt = await restoredAt;
    console.log(`CRIU restore ${durationMs.toFixed(0)} ms; restored handshake ${(sessionAt - restoreReturned).toFixed(0)} ms after restore returned`);

    const copied = await reachable(target.lab, 'the copy to serve', (s) => s.lastOutcome === 'restored');
    expect(copied).toMatchObject({ value: 42, restoreCount: 1 });
    expect(copied.events.slice(-2)).toEqual(['connected restored', 'after shop/warm-1 restored 1']);
    expect(server.sessions(target.hook.uid)).toMatchObject([{ kind: 'restored', container: 'app' }]);
    expect((await podHttp(target.lab.ip, 8080, 'GET', '/upstream')).json()).toEqual({ answer: 'pong 42' });
    // The original keeps its own state and session.
    expect(await state(originalPod)).toMatchObject({ value: 43, lastOutcome: 'resumed' });
    expect(server.sessions(hookPods.get('hooks-original')!.uid)).toHaveLength(1);
  }, 90_000);

  it('2. with its upstream hook disabled, the dump fails on the established connection and the app resumes', async () => {
    const app = await startApp('hooks-no-cleanup', { SKIP_UPSTREAM_HOOK: '1' });
    const prepared = await server.prepare(app.hook.uid, { checkpointId: 'shop/warm-2', timeoutMs: 10_000 });
    expect(prepared.status).toBe('ready');
    const dump = await app.container.checkpoint({ imageDir: join(dir, 'image-2'), leaveRunning: true });
    expect(dump.ok).toBe(false);
    expect(dump.log).toMatch(/TCP|tcp-established/);
    await server.finish(app.hook.uid, 'shop/warm-2', 'aborted');
    const after = await reachable(app.lab, 'the app to serve again', (s) => s.lastOutcome === 'aborted');
    expect(after.events.at(-1)).toBe('after shop/warm-2 aborted 0');
  }, 90_000);

  it.each([
    ['throws', 'throw', /flaky-cache: cache flush refused/],
    ['times out', 'hang', /stuck-flush: hook "stuck-flush" timed out after 300 ms \(timed out\)/],
  ])('4. a hook that %s aborts the checkpoint before any dump; the app gets aborted and keeps serving', async (_what, mode, reason) => {
    const app = await startApp(`hooks-fail-${mode}`, { FAILING_HOOK: mode });
    const prepared = await server.prepare(app.hook.uid, { checkpointId: `shop/warm-${mode}`, timeoutMs: 10_000 });
    expect(prepared.status).toBe('failed');
    expect(prepared.status === 'failed' && prepared.reasons.join('\n')).toMatch(reason);
    // No dump: the agent aborts instead of calling CRIU.
    await server.finish(app.hook.uid, `shop/warm-${mode}`, 'aborted');
    const after = await reachable(app.lab, 'the app to serve again', (s) => s.lastOutcome === 'aborted');
    expect(after.events).toContain(`after shop/warm-${mode} aborted 0`);
    expect((await podHttp(app.lab.ip, 8080, 'GET', '/upstream')).json()).toEqual({ answer: 'pong 0' });
  }, 90_000);
});
