import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
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
