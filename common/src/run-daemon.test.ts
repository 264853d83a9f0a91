/**
 * runDaemon, the process wrapper of the three daemons, in-process with a fake process: --help,
 * configuration errors, the settings it starts with, signals.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { captureLogger, writeUnreachableKubeconfig } from '@cryo/test';
import { formatDuration, OptionError, parseDurationSeconds, parseInteger, readOptions, sharedOptionSpecs, type OptionSpec } from './options.ts';
import { runDaemon, type Daemon } from './run-daemon.ts';

const specs = {
  port: { flag: '--port', env: 'T_PORT', default: 8080, parse: parseInteger(0, 65535), description: 'a port' } satisfies OptionSpec<number>,
  timeoutSeconds: { flag: '--timeout', env: 'T_TIMEOUT', default: 600, parse: parseDurationSeconds, format: formatDuration, description: 'a duration' } satisfies OptionSpec<number>,
  kubeconfig: sharedOptionSpecs.kubeconfig,
};

const dir = mkdtempSync(join(tmpdir(), 'cryo-run-daemon-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const kubeconfig = writeUnreachableKubeconfig(dir);

class FakeProcess extends EventEmitter {
  exitCode: number | string | null | undefined;
  exits: number[] = [];
  exit(code?: number): void {
    this.exits.push(code ?? 0);
  }
}

function daemon(start: Daemon<ReturnType<typeof read>>['start']): Daemon<ReturnType<typeof read>> {
  return { name: 'cryo-test', specs, readConfig: read, start };
}

function read(argv: readonly string[], env: NodeJS.ProcessEnv) {
  return readOptions(specs, argv, env);
}

async function run(argv: string[], start: Daemon<ReturnType<typeof read>>['start'] = () => Promise.resolve({ stop: () => Promise.resolve() })) {
  const log = captureLogger();
  const proc = new FakeProcess();
  const written: string[] = [];
  await runDaemon(daemon(start), { argv, env: {}, logger: log.logger, process: proc, stdout: { write: (text: string) => written.push(text) } });
  return { log, proc, help: written.join('') };
}

describe('runDaemon', () => {
  it('prints --help with each flag, its env var and its default as written, and starts nothing', async () => {
    let started = false;
    const { help, proc } = await run(['--port', 'bad', '--help'], () => {
      started = true;
      return Promise.resolve({ stop: () => Promise.resolve() });
    });
    expect(help).toMatch(/^Usage: cryo-test \[flags\]\n/);
    expect(help).toContain('  --timeout <value>   env T_TIMEOUT, default 10m\n');
    expect(started).toBe(false);
    expect(proc.exitCode).toBeUndefined();
  });

  it('refuses a bad flag in one line, without a stack, exit 2', async () => {
    const { log, proc } = await run(['--port', 'eighty']);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({ level: 'error', msg: 'cannot start: --port (env T_PORT): expected a whole number from 0 to 65535, got "eighty"' });
    expect(log.lines[0].err).toBeUndefined();
    expect(proc.exitCode).toBe(2);
  });

  it('says which kubeconfig it cannot load before anything starts, exit 2', async () => {
    const { log, proc } = await run(['--kubeconfig', join(dir, 'absent')]);
    expect(log.messages('error')[0]).toMatch(/^cannot start: cannot load the kubeconfig .*absent \(from --kubeconfig or KUBECONFIG\)/);
    expect(proc.exitCode).toBe(2);
  });

  it('logs the settings it starts with, durations as written, then passes the cluster it found', async () => {
    let server: string | undefined;
    const { log, proc } = await run(['--kubeconfig', kubeconfig, '--timeout', '90'], (_config, { kubeConfig }) => {
      server = kubeConfig.getCurrentCluster()?.server;
      return Promise.resolve({ stop: () => Promise.resolve() });
    });
    expect(log.lines[0]).toMatchObject({ level: 'info', msg: 'starting', settings: { port: 8080, timeout: '90s', kubeconfig } });
    expect(server).toBe('https://127.0.0.1:1');
    expect(proc.exitCode).toBeUndefined();
  });

  it('logs a failed start with its error, exit 1; an OptionError from the start is a configuration error, exit 2', async () => {
    const failed = await run(['--kubeconfig', kubeconfig], () => Promise.reject(new Error('port 8080 taken')));
    expect(failed.log.lines.at(-1)).toMatchObject({ level: 'error', msg: 'failed to start: port 8080 taken', err: { message: 'port 8080 taken' } });
    expect(failed.proc.exitCode).toBe(1);
    const refused = await run(['--kubeconfig', kubeconfig], () => Promise.reject(new OptionError('--tls-cert-file and --tls-key-file go together')));
    expect(refused.log.lines.at(-1)).toMatchObject({ msg: 'cannot start: --tls-cert-file and --tls-key-file go together' });
    expect(refused.proc.exitCode).toBe(2);
  });

  it('stops once on SIGTERM or SIGINT and exits at once on a second signal', async () => {
    let stops = 0;
    let finish = () => {};
    const { log, proc } = await run(['--kubeconfig', kubeconfig], () =>
      Promise.resolve({
        stop: () => {
          stops++;
          return new Promise<void>((resolve) => (finish = resolve));
        },
      }),
    );
    proc.emit('SIGTERM');
    expect(stops).toBe(1);
    expect(log.messages('info')).toContain('shutting down');
    proc.emit('SIGINT');
    expect(stops).toBe(1);
    expect(proc.exits).toEqual([1]);
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.messages('info')).toContain('stopped');
  });

  it('sets exit 1 when stopping fails', async () => {
    const { log, proc } = await run(['--kubeconfig', kubeconfig], () => Promise.resolve({ stop: () => Promise.reject(new Error('lease not released')) }));
    proc.emit('SIGTERM');
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.messages('error')).toEqual(['failed to stop cleanly: lease not released']);
    expect(proc.exitCode).toBe(1);
  });
});
