import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { CheckpointHooks } from './checkpoint-hooks.ts';
import type { HookContext } from './hook-registry.ts';
import { silentHookLogger } from './hook-logger.ts';
import { PROTOCOL_PATH } from './protocol.ts';
import { SDK_VERSION } from './version.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

describe('CheckpointHooks without an agent', () => {
  it('logs once, never throws, and does not keep the process alive', async () => {
    // A script that starts the SDK against a socket that does not exist and then has nothing
    // else to do: it must exit on its own, with one line on stderr.
    const script = `
      import { createCheckpointHooks } from ${JSON.stringify(path.join(here, 'index.ts'))};
      const hooks = createCheckpointHooks({ socketPath: '/nonexistent/cryo/agent.sock', retryMs: { initial: 5, max: 20 } });
      hooks.register({ name: 'x', beforeCheckpoint: () => {} });
      hooks.start();
      setTimeout(() => console.log('state', hooks.state), 300);
    `;
    const started = Date.now();
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stdout.trim()).toBe('state connecting');
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^cryo-hooks info: no Cryo agent socket; .*"socketPath":"\/nonexistent\/cryo\/agent.sock"/)]);
  });
});

describe('the package', () => {
  it('reports the version in package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(here, '../package.json'), 'utf8')) as { version: string };
    expect(SDK_VERSION).toBe(pkg.version);
  });
});

describe('CheckpointHooks when the agent is gone after ready (the outcome fallback)', () => {
  let dir: string;
  let socketPath: string;
  let hostnameFile: string;
  let hooks: CheckpointHooks | undefined;
  let server: Server | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-sdk-fallback-'));
    socketPath = path.join(dir, 'agent.sock');
    hostnameFile = path.join(dir, 'hostname');
  });

  afterEach(async () => {
    await hooks?.stop();
    server?.closeAllConnections();
    await new Promise((resolve) => (server?.listening ? server.close(resolve) : resolve(undefined)));
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * An agent that welcomes, asks for a checkpoint, and vanishes once answered `ready` (socket
   * gone, as when the node agent died mid-checkpoint). `afterReady` then plays the runtime: it
   * may put the new pod's name in the hostname file, as a restore into another pod does.
   */
  async function checkpointWithoutOutcome(afterReady: () => Promise<void>): Promise<HookContext> {
    server = createServer();
    const wss = new WebSocketServer({ server, path: PROTOCOL_PATH });
    wss.on('connection', (ws) => {
      ws.on('message', (data: Buffer) => {
        const message = JSON.parse(data.toString('utf8')) as { type: string; sessionId: string };
        if (message.type === 'hello') {
          const session = { protocol: 1, sessionId: message.sessionId, podUid: 'a1', podName: 'orders-0', namespace: 'shop', heartbeatIntervalMs: 10_000 };
          ws.send(JSON.stringify({ type: 'welcome', ...session }));
          ws.send(JSON.stringify({ type: 'prepare', id: 'p-1', checkpointId: 'shop/orders-warm', reason: '', deadline: new Date(Date.now() + 5_000).toISOString(), timeoutMs: 5_000 }));
        }
      });
    });
    await new Promise<void>((resolve) => server!.listen(socketPath, resolve));
    const outcome = new Promise<HookContext>((resolve) => {
      hooks = new CheckpointHooks({ socketPath, hostnameFile, podUid: 'a1', logger: silentHookLogger, outcomeTimeoutMs: 500 });
      hooks.register({ name: 'probe', afterRestore: (context) => resolve(context) });
      hooks.on('answered', (message) => {
        if (message.type !== 'ready') return;
        void (async () => {
          wss.close();
          server!.closeAllConnections();
          await new Promise((done) => server!.close(done));
          await rm(socketPath, { force: true });
          await afterReady();
        })();
      });
      hooks.start();
    });
    return outcome;
  }

  it('reads /etc/hostname: a copy whose UTS hostname is still the original one is restored', async () => {
    await writeFile(hostnameFile, 'orders-0\n');
    // containerd + runc restore the original's UTS hostname (os.hostname() does not change here
    // either); only the file the runtime mounts from the new pod's sandbox names the new pod.
    const context = await checkpointWithoutOutcome(() => writeFile(hostnameFile, 'orders-copy-1\n'));
    expect(context).toMatchObject({ checkpointId: 'shop/orders-warm', outcome: 'restored', restoreCount: 1 });
    expect(hooks!.restores).toBe(1);
  });

  it('runs the post-restore hooks as aborted when the hostname file did not change', async () => {
    await writeFile(hostnameFile, 'orders-0\n');
    const context = await checkpointWithoutOutcome(() => Promise.resolve());
    expect(context).toMatchObject({ checkpointId: 'shop/orders-warm', outcome: 'aborted', restoreCount: 0 });
  });

  it('falls back to os.hostname() when the file cannot be read', async () => {
    // No file at prepare: os.hostname() is read. The same name in the file afterwards is no change.
    const context = await checkpointWithoutOutcome(() => writeFile(hostnameFile, `${os.hostname()}\n`));
    expect(context).toMatchObject({ outcome: 'aborted', restoreCount: 0 });
  });
});

/**
 * An agent that welcomes a new process, asks it to prepare for `shop/orders-move` at once, and
 * answers its reconnect after `ready` with `resumed` and `outcome`.
 */
async function outcomeAgent(socketPath: string, outcome: unknown): Promise<{ hellos: Record<string, unknown>[]; close: () => Promise<void> }> {
  const server = createServer();
  const wss = new WebSocketServer({ server, path: PROTOCOL_PATH });
  const hellos: Record<string, unknown>[] = [];
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString('utf8')) as Record<string, unknown> & { type: string; sessionId: string; pendingCheckpoint: string | null };
      if (message.type !== 'hello') return;
      hellos.push(message);
      const session = { protocol: 1, sessionId: message.sessionId, podUid: 'a1', podName: 'orders-0', namespace: 'shop', heartbeatIntervalMs: 10_000 };
      if (message.pendingCheckpoint !== null) {
        ws.send(JSON.stringify({ type: 'resumed', ...session, checkpointId: message.pendingCheckpoint, outcome }));
        return;
      }
      ws.send(JSON.stringify({ type: 'welcome', ...session }));
      ws.send(JSON.stringify({ type: 'prepare', id: 'p-1', checkpointId: 'shop/orders-move', reason: 'migration', deadline: new Date(Date.now() + 5_000).toISOString(), timeoutMs: 5_000 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    hellos,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(socketPath, { force: true });
    },
  };
}

describe('CheckpointHooks and the outcome of a checkpoint', () => {
  let dir: string;
  let socketPath: string;
  let agent: Awaited<ReturnType<typeof outcomeAgent>> | undefined;
  let hooks: CheckpointHooks | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-sdk-outcome-'));
    socketPath = path.join(dir, 'agent.sock');
  });

  afterEach(async () => {
    await hooks?.stop();
    hooks = undefined;
    await agent?.close();
    agent = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs one checkpoint against an agent that ends it with `outcome`; resolves with the post-restore context. */
  async function checkpointEndingWith(outcome: unknown, logger = silentHookLogger): Promise<HookContext> {
    agent = await outcomeAgent(socketPath, outcome);
    return new Promise<HookContext>((resolve) => {
      hooks = new CheckpointHooks({ socketPath, podUid: 'a1', logger });
      hooks.register({ name: 'probe', afterRestore: (context) => resolve(context) });
      hooks.start();
    });
  }

  it('tells the agent in hello that it understands superseded', async () => {
    await checkpointEndingWith('done');
    expect(agent!.hellos[0]).toMatchObject({ protocol: 1, features: ['superseded'], pendingCheckpoint: null });
    expect(agent!.hellos[1]).toMatchObject({ features: ['superseded'], pendingCheckpoint: 'shop/orders-move' });
  });

  it.each([
    ['done', 'resumed'],
    ['unknown', 'resumed'],
    ['aborted', 'aborted'],
    ['superseded', 'superseded'],
  ])('maps the agent\'s outcome %s to %s', async (outcome, expected) => {
    const context = await checkpointEndingWith(outcome);
    expect(context).toMatchObject({ checkpointId: 'shop/orders-move', reason: 'migration', outcome: expected, restoreCount: 0 });
    expect(hooks!.superseded).toBe(expected === 'superseded');
  });

  it.each([['from-a-later-version'], [null], [undefined]])('takes an outcome it does not know (%s) as superseded, the safe reading, and says so', async (outcome) => {
    const warnings: Array<[Record<string, unknown>, string]> = [];
    const logger = { ...silentHookLogger, warn: (fields: Record<string, unknown>, message: string) => void warnings.push([fields, message]) };
    const context = await checkpointEndingWith(outcome, logger);
    expect(context.outcome).toBe('superseded');
    expect(warnings).toEqual([[expect.objectContaining({ checkpointId: 'shop/orders-move' }), expect.stringMatching(/outcome this SDK does not know; taking it as superseded/)]]);
  });

  it('stays superseded when stopped (stop() only lets the process exit)', async () => {
    await checkpointEndingWith('superseded');
    expect(hooks!.superseded).toBe(true);
    await hooks!.stop();
    expect(hooks!.superseded).toBe(true);
  });

  /**
   * A process whose only work was its (now closed) server: superseded, it must not run out of
   * work and exit (the kubelet would restart it as a fresh instance beside its copy), but SIGTERM
   * still ends it. After `done` it exits on its own as before.
   */
  it.each([
    ['superseded', 'lives on until SIGTERM'],
    ['done', 'exits on its own once nothing else holds it'],
  ])('%s: the process %s', async (outcome) => {
    agent = await outcomeAgent(socketPath, outcome);
    const script = `
      import { createCheckpointHooks, silentHookLogger } from ${JSON.stringify(path.join(here, 'index.ts'))};
      import net from 'node:net';
      // The app's work: a server, closed for the checkpoint (and, here, not opened again).
      const server = net.createServer().listen(0, '127.0.0.1');
      const hooks = createCheckpointHooks({ socketPath: ${JSON.stringify(socketPath)}, podUid: 'a1', logger: silentHookLogger });
      hooks.register({ name: 'server', beforeCheckpoint: () => new Promise((resolve) => server.close(resolve)), afterRestore: (ctx) => console.log('outcome', ctx.outcome) });
      hooks.start();
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let stdout = '';
    await Promise.race([exited, new Promise<void>((resolve) => child.stdout.on('data', (data: Buffer) => ((stdout += data.toString('utf8')), stdout.includes('\n') && resolve())))]);
    const expected = outcome === 'superseded' ? 'superseded' : 'resumed';
    expect(stdout.trim()).toBe(`outcome ${expected}`);
    // The agent goes away: nothing but the SDK is left in the process.
    await agent.close();
    agent = undefined;
    if (outcome === 'superseded') {
      const early = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('alive'), 1_000))]);
      expect(early).toBe('alive');
      child.kill('SIGTERM');
      expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
    } else {
      const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
      expect(await exited).toEqual({ code: 0, signal: null });
      clearTimeout(timer);
    }
  }, 20_000);
});
