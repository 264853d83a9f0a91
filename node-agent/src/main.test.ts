/** The node agent process as it starts: the entry point run as a child process. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { itExitsWithoutACluster, REPO_ROOT, writeUnreachableKubeconfig } from '@cryo/test';

describe('node-agent/src/main.ts', () => {
  // --node-name is checked first; with it, the missing cluster is what stops the start.
  itExitsWithoutACluster('node-agent/src/main.ts', { NODE_NAME: 'node-a' });

  const dir = mkdtempSync(join(tmpdir(), 'cryo-agent-main-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('logs the settings it runs with first, from flags, env and defaults, durations and sizes as written', async () => {
    // A cluster that is configured but does not answer: the agent logs its settings, then keeps trying.
    const kubeconfig = writeUnreachableKubeconfig(dir);
    const args = ['--port', '0', '--host-hooks-dir', join(dir, 'hooks'), '--directory', join(dir, 'store'), '--directory-registry-address', 'off', '--retention-max-age', '604800', '--no-directory-shared'];
    const child = spawn(process.execPath, [join(REPO_ROOT, 'node-agent/src/main.ts'), ...args], {
      env: { HOME: dir, NODE_NAME: 'node-a', KUBECONFIG: kubeconfig, CRYO_RETENTION_MAX_TOTAL_BYTES: '53687091200', CRYO_DIRECTORY_SHARED: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let first: string;
    try {
      first = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`the agent exited (${code}) before logging`)));
      });
    } finally {
      child.kill('SIGKILL');
    }
    expect(JSON.parse(first)).toMatchObject({
      level: 'info',
      msg: 'starting',
      settings: {
        'node-name': 'node-a',
        'hook-socket-mode': '0666',
        'checkpoint-timeout': '2m',
        'retention-max-age': '7d',
        'retention-max-total-bytes': '50Gi',
        'directory-shared': false,
        'criu-log-dirs': ['/run/containerd/io.containerd.runtime.v2.task/k8s.io', '/var/lib/containers/storage/overlay-containers'],
        kubeconfig,
      },
    });
  });
});
