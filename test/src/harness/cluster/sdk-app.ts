/**
 * A folder an app image is made of (Cluster.appImage): the app's source as main.ts, with the hook
 * SDK installed as an app installs it (the published package: compiled JavaScript, since Node does
 * not strip types inside node_modules) and its one dependency, ws.
 */
import { cp, mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { runCommand } from '../lab/run-command.ts';

/** `besides`: files main.ts imports (as ./<their name>), copied next to it. */
export async function sdkAppDir(repoRoot: string, name: string, source: string, besides: readonly string[] = []): Promise<string> {
  const packed = await runCommand([process.execPath, join(repoRoot, 'hook-sdk/scripts/pack-publishable.ts')], { timeoutMs: 120_000 });
  if (packed.code !== 0) throw new Error(`packing the hook SDK failed:\n${packed.stderr}${packed.stdout}`);
  const tarball = packed.stdout.trim().split('\n').at(-1)!;
  const dir = join(repoRoot, '.tmp/cluster-apps', name);
  await rm(dir, { recursive: true, force: true });
  const sdk = join(dir, 'node_modules/@cryo/hook-sdk');
  await mkdir(sdk, { recursive: true });
  const unpacked = await runCommand(['tar', 'xzf', tarball, '-C', sdk, '--strip-components=1']);
  if (unpacked.code !== 0) throw new Error(`unpacking ${tarball} failed: ${unpacked.stderr}`);
  await cp(join(repoRoot, 'node_modules/ws'), join(dir, 'node_modules/ws'), { recursive: true });
  await cp(source, join(dir, 'main.ts'));
  for (const file of besides) await cp(file, join(dir, basename(file)));
  return dir;
}
