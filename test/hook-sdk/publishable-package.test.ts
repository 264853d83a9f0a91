/**
 * The SDK as an app installs it: the packed tarball, unpacked into a node_modules of its own, used
 * from plain JavaScript and type-checked from TypeScript against the shipped declarations.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let app: string;

beforeAll(async () => {
  const { stdout } = await run(process.execPath, [path.join(root, 'hook-sdk/scripts/pack-publishable.ts')], { cwd: root, timeout: 120_000 });
  const tarball = stdout.trim().split('\n').at(-1)!;
  await mkdir(path.join(root, '.tmp'), { recursive: true });
  app = await mkdtemp(path.join(root, '.tmp/sdk-consumer-'));
  const installed = path.join(app, 'node_modules/@cryo/hook-sdk');
  await mkdir(installed, { recursive: true });
  await run('tar', ['xzf', tarball, '-C', installed, '--strip-components=1']);
  // The package's one dependency, as npm would have installed it.
  await symlink(path.join(root, 'node_modules/ws'), path.join(app, 'node_modules/ws'));
  await symlink(path.join(root, 'node_modules/@types'), path.join(app, 'node_modules/@types'));
}, 180_000);

afterAll(async () => {
  if (app !== undefined) await rm(app, { recursive: true, force: true });
});

describe('the published @cryo/hook-sdk', () => {
  it('loads as plain JavaScript, without TypeScript sources', async () => {
    await writeFile(
      path.join(app, 'main.mjs'),
      `import { createCheckpointHooks, ManagedTimers, httpServerHook, protocol } from '@cryo/hook-sdk';
       import { PROTOCOL_VERSION } from '@cryo/hook-sdk/protocol';
       const hooks = createCheckpointHooks({ socketPath: '/nonexistent.sock', logger: { debug() {}, info() {}, warn() {}, error() {} } });
       hooks.register(new ManagedTimers().hook());
       console.log(JSON.stringify({ v: PROTOCOL_VERSION, same: protocol.PROTOCOL_VERSION === PROTOCOL_VERSION, state: hooks.state, http: typeof httpServerHook }));`,
    );
    const { stdout } = await run(process.execPath, ['main.mjs'], { cwd: app });
    expect(JSON.parse(stdout)).toEqual({ v: 1, same: true, state: 'idle', http: 'function' });
  });

  it('type-checks an app against the shipped declarations', async () => {
    await writeFile(
      path.join(app, 'app.ts'),
      `import { createCheckpointHooks, type HookContext } from '@cryo/hook-sdk';
       const hooks = createCheckpointHooks();
       hooks.register({ name: 'db', timeoutMs: 5_000, afterRestore: (ctx: HookContext) => { const o: 'resumed' | 'restored' | 'aborted' | 'superseded' | null = ctx.outcome; return o; } });
       // @ts-expect-error: a hook's timeout is a number
       hooks.register({ name: 'bad', timeoutMs: 'soon', beforeCheckpoint: () => {} });
       export {};`,
    );
    await writeFile(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: ['node'] }, files: ['app.ts'] }),
    );
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ type: 'module' }));
    await run(path.join(root, 'node_modules/.bin/tsc'), ['-p', app], { cwd: app });
  }, 60_000);
});
