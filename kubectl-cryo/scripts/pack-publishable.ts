/**
 * Builds the npm package users install with `npm i -g`: one JavaScript file with @cryo/common
 * inlined (it is private to this repository) and @kubernetes/client-node as the one dependency.
 * Node does not strip types inside node_modules, so the TypeScript sources the repository runs
 * cannot be published as they are. Writes .tmp/kubectl-cryo-package/ and packs it into
 * .tmp/cryo-kubectl-cryo-<version>.tgz; prints the tarball's path.
 *
 * Only what the CLI uses of @cryo/common is kept (no module of it has side effects the CLI needs):
 * its logger, metrics and TLS code, and their dependencies, stay out.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(cli, '..');
const stage = path.join(root, '.tmp/kubectl-cryo-package');
const source = JSON.parse(readFileSync(path.join(cli, 'package.json'), 'utf8')) as { name: string; version: string; description: string; license: string; engines: unknown; dependencies: Record<string, string> };
const published = ['@kubernetes/client-node'];

rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
const bin = path.join(stage, 'bin/kubectl-cryo.js');
await build({
  input: path.join(cli, 'src/main.ts'),
  platform: 'node',
  external: [...published.map((name) => new RegExp(`^${name}(/|$)`)), /^node:/],
  treeshake: { moduleSideEffects: false },
  output: { file: bin, format: 'esm' },
  write: true,
  logLevel: 'warn',
});
chmodSync(bin, 0o755);

const manifest = {
  name: source.name,
  version: source.version,
  description: source.description,
  license: source.license,
  type: 'module',
  engines: source.engines,
  bin: { 'kubectl-cryo': './bin/kubectl-cryo.js' },
  files: ['bin', 'README.md'],
  dependencies: Object.fromEntries(published.map((name) => [name, source.dependencies[name]])),
};
writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
copyFileSync(path.join(cli, 'README.md'), path.join(stage, 'README.md'));
const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', path.join(root, '.tmp')], { cwd: stage, encoding: 'utf8' }).trim();
process.stdout.write(`${path.join(root, '.tmp', tarball)}\n`);
