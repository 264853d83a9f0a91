/**
 * Builds the npm package apps install: compiled JavaScript with type declarations (Node does not
 * strip types inside node_modules, so the TypeScript sources the monorepo runs cannot be
 * published as they are). Writes .tmp/hook-sdk-package/ and packs it into .tmp/cryo-hook-sdk-<version>.tgz.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const sdk = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(sdk, '..');
const stage = path.join(root, '.tmp/hook-sdk-package');

rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
execFileSync(path.join(root, 'node_modules/.bin/tsc'), ['-p', path.join(sdk, 'tsconfig.build.json')], { stdio: 'inherit' });

const source = JSON.parse(readFileSync(path.join(sdk, 'package.json'), 'utf8')) as Record<string, unknown>;
const entry = (name: string) => ({ types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` });
const published = {
  name: source.name,
  version: source.version,
  description: source.description,
  license: source.license,
  type: 'module',
  engines: source.engines,
  exports: { '.': entry('index'), './protocol': entry('protocol') },
  types: './dist/index.d.ts',
  files: ['dist', 'README.md'],
  dependencies: source.dependencies,
};
writeFileSync(path.join(stage, 'package.json'), JSON.stringify(published, null, 2) + '\n');
copyFileSync(path.join(sdk, 'README.md'), path.join(stage, 'README.md'));
const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', path.join(root, '.tmp')], { cwd: stage, encoding: 'utf8' }).trim();
process.stdout.write(`${path.join(root, '.tmp', tarball)}\n`);
