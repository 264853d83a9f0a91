/**
 * The executable as kubectl runs it: a child process with real argv, real exit codes and real
 * stdout/stderr (a pipe, not a terminal), against the fake kube-apiserver.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHECKPOINT_API_VERSION } from '@cryo/common';
import { freePort, waitFor } from '@cryo/test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from './errors.ts';
import { NS, runningPod, startTestCluster, succeededCheckpoint, type TestCluster } from './testing.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster();
  cluster.api.put(succeededCheckpoint('web-warm', 'web'));
  cluster.api.put(runningPod('web'));
});

afterAll(async () => {
  await cluster.stop();
});

function kubectlCryo(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH, HOME: '/nonexistent', ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('kubectl-cryo as a process', () => {
  it('prints -o json and exits 0', async () => {
    const result = await kubectlCryo(['get', 'checkpoints', '--kubeconfig', cluster.kubeconfig, '-n', NS, '-o', 'json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT.OK);
    const list = JSON.parse(result.stdout);
    expect(list).toMatchObject({ kind: 'List', items: [{ kind: 'Checkpoint', metadata: { name: 'web-warm' } }] });
  });

  it('reads the kubeconfig from KUBECONFIG and the namespace flag after the arguments, as kubectl passes them', async () => {
    const result = await kubectlCryo(['get', 'checkpoint', 'web-warm', '-o', 'name', `--namespace=${NS}`], { KUBECONFIG: cluster.kubeconfig });
    expect(result).toEqual({ code: EXIT.OK, stdout: 'checkpoint.cryo.dev/web-warm\n', stderr: '' });
  });

  it('exits 3 for what does not exist, 2 for usage errors, 0 for --help', async () => {
    const missing = await kubectlCryo(['describe', 'checkpoint', 'nope', '--kubeconfig', cluster.kubeconfig, '-n', NS]);
    expect(missing.code).toBe(EXIT.NOT_FOUND);
    expect(missing.stderr).toMatch(/^error: Checkpoint "nope" in namespace shop not found/);
    const usage = await kubectlCryo(['restore']);
    expect(usage).toMatchObject({ code: EXIT.USAGE, stdout: '' });
    expect(usage.stderr).toMatch(/^error: missing <checkpoint>/);
    expect((await kubectlCryo([])).code).toBe(EXIT.USAGE);
    const help = await kubectlCryo(['drain', '--help']);
    expect(help.code).toBe(EXIT.OK);
    expect(help.stdout).toContain('Examples:');
  });

  it('creates and exits 0 (nothing left open holds the process)', async () => {
    const started = Date.now();
    const result = await kubectlCryo(['restore', 'web-warm', '--name', 'proc-copy', '--kubeconfig', cluster.kubeconfig, '-n', NS]);
    expect(result).toEqual({ code: EXIT.OK, stdout: 'pod/proc-copy created\n', stderr: '' });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('stops waiting on Ctrl-C with 130, leaving the Checkpoint it created', async () => {
    const child = spawn(process.execPath, [MAIN, 'checkpoint', 'web', '--name', 'interrupted', '--wait', '--kubeconfig', cluster.kubeconfig, '-n', NS], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(() => cluster.api.get(CHECKPOINT_API_VERSION, 'checkpoints', NS, 'interrupted'), { timeoutMs: 15_000, what: 'the Checkpoint' });
    await cluster.api.waitForWatches(1, 15_000);
    child.kill('SIGINT');
    expect(await exited).toBe(EXIT.INTERRUPTED);
    expect(stderr).toMatch(/^interrupted: nothing is lost/);
    expect(cluster.api.get(CHECKPOINT_API_VERSION, 'checkpoints', NS, 'interrupted')).toBeDefined();
  });

  it('says what to fix when the kubeconfig or context is wrong (2) and when the API server is unreachable (1)', async () => {
    const badFile = await kubectlCryo(['get', '--kubeconfig', '/nonexistent/kubeconfig']);
    expect(badFile.code).toBe(EXIT.USAGE);
    expect(badFile.stderr).toContain('cannot load the kubeconfig /nonexistent/kubeconfig');
    const badContext = await kubectlCryo(['get', '--kubeconfig', cluster.kubeconfig, '--context', 'prod']);
    expect(badContext.code).toBe(EXIT.USAGE);
    expect(badContext.stderr).toBe('error: --context prod: no such context in the kubeconfig; it has fake-kube-apiserver (kubectl config get-contexts)\n');
    const closed = join(dirname(cluster.kubeconfig), 'closed-kubeconfig');
    const port = await freePort();
    writeFileSync(closed, readFileSync(cluster.kubeconfig, 'utf8').replace(cluster.api.url, `https://127.0.0.1:${port}`));
    const unreachable = await kubectlCryo(['get', '--kubeconfig', closed]);
    expect(unreachable.code).toBe(EXIT.FAILED);
    expect(unreachable.stderr).toBe(`error: cannot reach the API server at https://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; check --context and --kubeconfig (kubectl config current-context)\n`);
  });
});
