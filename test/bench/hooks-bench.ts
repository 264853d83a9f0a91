/**
 * npm run bench:hooks — what the hook channel costs.
 *
 * 1. prepare → ready (and disconnected) round trip beyond the hooks' own work, with 1 and with
 *    100 connected processes (real Node processes running the SDK, one per pod socket), against a
 *    baseline in the same run: another process's JSON ping → pong over the same kind of socket,
 *    the cheapest exchange there is (on this VM most of it is waking the idle process up).
 *    Target: p99 overhead ≤ 5 ms.
 * 2. With the CRIU lab (root, scripts/lab/provision.sh): the raw crun/CRIU dump and restore times
 *    of an SDK app, and the time from the restore to the copy's `restored` handshake
 *    (target ≤ 100 ms), over several restores of one checkpoint into fresh pods.
 * BENCH_QUICK=1 runs fewer rounds.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '@cryo/common';
import { HookServer, type HookPod } from '@cryo/node-agent';
import { criuLogSeconds, openLab, podHttp, startLineEchoUpstream, waitFor, type Lab } from '@cryo/test';
import { quantile } from './quantiles.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const quick = process.env.BENCH_QUICK === '1';
const HOOK_MS = 2;

const ms = (v: number) => `${v.toFixed(2)} ms`;
const summary = (values: number[]) => `p50 ${ms(quantile(values, 0.5))}  p99 ${ms(quantile(values, 0.99))}  max ${ms(Math.max(...values))}  (n=${values.length})`;

async function baselinePingPong(socketPath: string, rounds: number): Promise<number[]> {
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'test/bench/ping-client.ts')], {
    env: { ...process.env, CRYO_HOOK_SOCKET: socketPath, ROUNDS: String(rounds) },
    timeout: 120_000,
  });
  return (JSON.parse(stdout) as number[]).slice(20);
}

interface Round {
  perProcess: number[];
  toReady: number[];
  whole: number[];
}

/** prepare → finish rounds on one pod, waiting after each for its processes to be back. */
async function rounds(server: HookServer, pod: HookPod, processes: number, count: number, into: Round): Promise<void> {
  for (let round = 0; round < count + 3; round++) {
    const id = `bench/${pod.name}-${round}`;
    const result = await server.prepare(pod.uid, { checkpointId: id, timeoutMs: 30_000 });
    if (result.status !== 'ready') throw new Error(`prepare failed: ${result.reasons.join('; ')}`);
    await server.finish(pod.uid, id, 'done');
    if (round >= 3) {
      // The first rounds warm up the JIT on both ends; they are not counted.
      for (const s of result.sessions) {
        into.perProcess.push(s.roundTripMs - s.hookDurationMs);
        into.toReady.push(s.readyAfterMs - s.hookDurationMs);
      }
      into.whole.push(result.durationMs - Math.max(...result.sessions.map((s) => s.hookDurationMs)));
    }
    await waitFor(() => server.sessions(pod.uid).length === processes, { timeoutMs: 30_000, intervalMs: 2, what: 'every process back' });
    // Real checkpoints are seconds apart: let the processes finish their post-restore hooks and go
    // idle, as the baseline's do between pings, so one round's tail is not the next one's cost.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function protocolOverhead(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cryo-bench-hooks-'));
  // The baseline's client pings as fast as it is answered, far above the request rate the agent
  // allows a pod (node-agent/src/hooks/hook-limits.ts): lift those limits for the measurement.
  const server = new HookServer({
    hostHooksDir: dir,
    logger: silentLogger(),
    limits: { requestBurst: Infinity, requestsPerSecond: Infinity, receiveBurstMessages: Infinity, receiveMessagesPerSecond: Infinity },
  });
  const pods: HookPod[] = Array.from({ length: 100 }, (_, i) => ({ uid: randomUUID(), name: `bench-${i}`, namespace: 'bench' }));
  const fanOut: HookPod = { uid: randomUUID(), name: 'bench-fan-out', namespace: 'bench' };
  const basePod: HookPod = { uid: randomUUID(), name: 'baseline', namespace: 'bench' };
  await server.sync([...pods, fanOut, basePod]);
  const children: ChildProcess[] = [];
  const startProcess = (pod: HookPod) =>
    children.push(
      spawn(process.execPath, [path.join(ROOT, 'test/bench/hook-bench-client.ts')], {
        env: { ...process.env, CRYO_HOOK_SOCKET: server.socketPath(pod.uid), CRYO_POD_UID: pod.uid, CRYO_CONTAINER_NAME: 'app', HOOK_MS: String(HOOK_MS) },
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
  const connected = (pod: HookPod, n: number) => waitFor(() => server.sessions(pod.uid).length === n, { timeoutMs: 120_000, intervalMs: 50, what: `${n} processes in ${pod.name}` });
  const report = (label: string, r: Round) => {
    console.log(`${label}: prepare → ready + disconnected, per process   ${summary(r.perProcess)}   p99 / baseline p50 = ${(quantile(r.perProcess, 0.99) / quantile(baselineSamples, 0.5)).toFixed(1)}x   (target p99 ≤ 5 ms: ${quantile(r.perProcess, 0.99) <= 5 ? 'met' : 'NOT met'})`);
    console.log(`${label}: prepare → ready (before the close)           ${summary(r.toReady)}`);
  };
  let baselineSamples: number[] = [];
  try {
    baselineSamples = await baselinePingPong(server.socketPath(basePod.uid)!, quick ? 200 : 2_000);
    console.log(`baseline: another process's ping → pong on a pod socket   ${summary(baselineSamples)}`);

    // One process connected.
    startProcess(pods[0]);
    await connected(pods[0], 1);
    const one: Round = { perProcess: [], toReady: [], whole: [] };
    await rounds(server, pods[0], 1, quick ? 50 : 300, one);
    report('1 connected process   ', one);

    // 100 processes connected, one per pod; each round checkpoints one of them.
    for (const pod of pods.slice(1)) startProcess(pod);
    await Promise.all(pods.map((pod) => connected(pod, 1)));
    const hundred: Round = { perProcess: [], toReady: [], whole: [] };
    const perPod = quick ? 1 : 3;
    for (const pod of pods) await rounds(server, pod, 1, perPod, hundred);
    report('100 connected processes', hundred);

    // Fan-out, for scale: 100 processes in one pod, all preparing at once on this 2-core machine.
    for (const child of children.splice(0)) child.kill();
    for (let i = 0; i < 100; i++) startProcess(fanOut);
    await connected(fanOut, 100);
    const fan: Round = { perProcess: [], toReady: [], whole: [] };
    await rounds(server, fanOut, 100, quick ? 3 : 10, fan);
    console.log(`fan-out: 100 processes in one pod, prepare → all ready + disconnected (beyond the slowest hook)   ${summary(fan.whole)}`);
  } finally {
    for (const child of children) child.kill();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function restoreToRestored(lab: Lab): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cryo-bench-criu-'));
  const hooksDir = path.join(dir, 'hooks');
  await mkdir(hooksDir);
  const server = new HookServer({ hostHooksDir: hooksDir, logger: silentLogger() });
  const upstream = await startLineEchoUpstream(lab.hostAddress);
  const makePod = async (name: string) => {
    const hook: HookPod = { uid: randomUUID(), name, namespace: 'bench' };
    await server.addPod(hook);
    return { hook, lab: await lab.createPod(name), socketDir: path.join(hooksDir, hook.uid) };
  };
  try {
    const original = await makePod('bench-original');
    const container = await lab.runContainer({
      id: 'bench-original',
      pod: original.lab,
      argv: [lab.nodeBinary, path.join(ROOT, 'test/criu/fixtures/hooked-service.ts')],
      cwd: ROOT,
      env: { PORT: '8080', UPSTREAM: upstream.address, CRYO_POD_UID: original.hook.uid, CRYO_CONTAINER_NAME: 'app', CRYO_HOOK_SOCKET: '/run/cryo/agent.sock' },
      mounts: [{ source: original.socketDir, destination: '/run/cryo' }],
    });
    await waitFor(() => podHttp(original.lab.ip, 8080, 'GET', '/state').catch(() => undefined), { timeoutMs: 30_000, what: 'the app' });
    await waitFor(() => server.sessions(original.hook.uid).length === 1, { what: 'its session' });
    const rss = (await readFile(`/proc/${container.pid}/status`, 'utf8')).match(/VmRSS:\s+(\d+)/)?.[1];
    const prepared = await server.prepare(original.hook.uid, { checkpointId: 'bench/ckpt', timeoutMs: 10_000 });
    if (prepared.status !== 'ready') throw new Error(prepared.reasons.join('; '));
    const imageDir = path.join(dir, 'image');
    const dump = await container.checkpoint({ imageDir, leaveRunning: true });
    if (!dump.ok) throw new Error(dump.log);
    await server.finish(original.hook.uid, 'bench/ckpt', 'done');
    console.log(`app RSS ${(Number(rss) / 1024).toFixed(0)} MiB; prepare (hooks included) ${ms(prepared.durationMs)}`);
    console.log(`dump (--leave-running): crun checkpoint ${ms(dump.durationMs)}, CRIU's own ${ms((await criuLogSeconds(path.join(imageDir, 'dump.log'))) * 1000)}`);

    const restores = quick ? 2 : 5;
    const crunTimes: number[] = [];
    const criuTimes: number[] = [];
    const fromReturn: number[] = [];
    const fromStart: number[] = [];
    const afterCriu: number[] = [];
    let lastLine = '';
    for (let i = 0; i < restores; i++) {
      const target = await makePod(`bench-copy-${i}`);
      const restored = new Promise<number>((resolve) =>
        server.on('session', (pod, _s, answer) => {
          if (pod.uid === target.hook.uid && answer.type === 'restored') resolve(performance.now());
        }),
      );
      const started = performance.now();
      const { container: copy, durationMs } = await lab.restoreContainer({ id: `bench-copy-${i}`, pod: target.lab, imageDir, mounts: [{ source: target.socketDir, destination: '/run/cryo' }] });
      const returned = performance.now();
      const at = await restored;
      crunTimes.push(durationMs);
      criuTimes.push((await criuLogSeconds(path.join(copy.bundleDir, 'work/restore.log'))) * 1000);
      fromReturn.push(at - returned);
      fromStart.push(at - started);
      // CRIU writes its log's last line as the restore completes and the tasks run on (under
      // crun, the RPC answer); the log file's mtime is that moment on the wall clock.
      const restoreLog = path.join(copy.bundleDir, 'work/restore.log');
      const criuDoneAt = (await stat(restoreLog)).mtimeMs;
      afterCriu.push(performance.timeOrigin + at - criuDoneAt);
      if (i === 0) lastLine = (await readFile(restoreLog, 'utf8')).trimEnd().split('\n').at(-1) ?? '';
      await copy.remove();
      await target.lab.remove();
      await server.removePod(target.hook.uid);
    }
    console.log(`restore: crun restore ${summary(crunTimes)}; CRIU's own ${summary(criuTimes)}`);
    console.log(`restore → copy's "restored" handshake: after crun restore returned ${summary(fromReturn)}; from the start of the restore ${summary(fromStart)}`);
    console.log(`CRIU's restore done (restore.log's last line: ${JSON.stringify(lastLine)}) → copy's "restored" handshake  ${summary(afterCriu)}`);
    console.log(`  (target ≤ 100 ms after the restore: ${Math.max(...afterCriu) <= 100 ? 'met' : 'NOT met'}; a negative time after crun returned = the copy connected before crun did)`);
  } finally {
    await lab.close();
    await server.close();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

console.log('# hook channel benchmark' + (quick ? ' (BENCH_QUICK: fewer rounds)' : ''));
await protocolOverhead();
const lab = await openLab();
if ('skip' in lab) console.log(`CRIU part skipped: ${lab.skip}`);
else await restoreToRestored(lab);
process.exit(0);
