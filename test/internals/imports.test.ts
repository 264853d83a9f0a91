/**
 * Tests reach the shared test tooling only through '@cryo/test' (test/src/index.ts), and another
 * package only through its name ('@cryo/node-agent', not '../../node-agent/src/index.ts'): a helper
 * moved inside test/src, or a package's barrel, then breaks no importer, and what is shared is
 * visible in one place. Imports of the code under test itself (a package's own internals, or
 * internals a barrel does not export) stay relative.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PACKAGES: Record<string, string> = { common: '@cryo/common', webhook: '@cryo/webhook', 'node-agent': '@cryo/node-agent', controller: '@cryo/controller', 'hook-sdk': '@cryo/hook-sdk' };
const ROOTS = ['test', ...Object.keys(PACKAGES), 'kubectl-cryo'];

/** Every module specifier of a static import or export, or of a dynamic import() with a literal. */
function specifiersOf(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)) {
    found.push(match[1] ?? match[2] ?? match[3]);
  }
  return found;
}

/** What is wrong with importing `specifier` from the file at `file` (relative to the repository), if anything. */
export function importProblem(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
  const from = file.split('/')[0];
  if (target.startsWith('test/src/') && !file.startsWith('test/src/')) {
    return `${file} imports ${specifier}: import the shared test tooling from '@cryo/test' (export it from test/src/index.ts if it is not yet)`;
  }
  const barrel = /^([a-z-]+)\/src\/index\.ts$/.exec(target);
  if (barrel !== null && barrel[1] !== from && PACKAGES[barrel[1]] !== undefined) {
    return `${file} imports ${specifier}: import ${PACKAGES[barrel[1]]} by its name`;
  }
  return undefined;
}

async function typeScriptFiles(dir: string): Promise<string[]> {
  const entries = await readdir(path.join(REPO, dir), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.relative(REPO, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .filter((file) => !file.split('/').includes('node_modules'));
}

describe('imports of shared test tooling and of other packages', () => {
  it('finds a relative import of test/src and of another package\'s barrel, and leaves the rest', () => {
    const sample = [
      "import { waitFor } from '../src/harness/wait-for.ts';",
      "import type { Lab } from '../src/index.ts';",
      "import {\n  FakeKubeApiServer,\n} from '../../../test/src/fakes/kube-apiserver.ts';",
      "export { tarOf } from '../../test/src/harness/tar-writer.ts';",
      // Split, so that the scan of this very file below does not find it.
      "const { loadFixture } = await import" + "('../../test/src/fixtures/load-fixture.ts');",
      "import { startNodeAgent } from '../../node-agent/src/index.ts';",
      "import { RegistryStore } from '../../node-agent/src/storage/registry/registry-store.ts';",
      "import { waitFor } from '@cryo/test';",
      "import { helper } from './agent-on-fakes.ts';",
    ].join('\n');
    const problems = (file: string) => specifiersOf(sample).flatMap((specifier) => importProblem(file, specifier) ?? []);
    expect(problems('test/node-agent/x.test.ts')).toEqual([
      "test/node-agent/x.test.ts imports ../src/harness/wait-for.ts: import the shared test tooling from '@cryo/test' (export it from test/src/index.ts if it is not yet)",
      "test/node-agent/x.test.ts imports ../src/index.ts: import the shared test tooling from '@cryo/test' (export it from test/src/index.ts if it is not yet)",
      // From test/node-agent, ../../test/src is test/src too.
      "test/node-agent/x.test.ts imports ../../test/src/harness/tar-writer.ts: import the shared test tooling from '@cryo/test' (export it from test/src/index.ts if it is not yet)",
      "test/node-agent/x.test.ts imports ../../test/src/fixtures/load-fixture.ts: import the shared test tooling from '@cryo/test' (export it from test/src/index.ts if it is not yet)",
      "test/node-agent/x.test.ts imports ../../node-agent/src/index.ts: import @cryo/node-agent by its name",
    ]);
    // From webhook/src/tls, only the path that reaches test/src is one; ../../node-agent is no package there.
    expect(problems('webhook/src/tls/x.test.ts').map((p) => p.split(': ')[0])).toEqual([
      'webhook/src/tls/x.test.ts imports ../../../test/src/fakes/kube-apiserver.ts',
    ]);
    expect(problems('common/src/x.test.ts').map((p) => p.split(': ')[0])).toEqual([
      'common/src/x.test.ts imports ../../test/src/harness/tar-writer.ts',
      'common/src/x.test.ts imports ../../test/src/fixtures/load-fixture.ts',
      'common/src/x.test.ts imports ../../node-agent/src/index.ts',
    ]);
    // test/src itself is the tooling: its modules import each other.
    expect(importProblem('test/src/index.ts', './harness/wait-for.ts')).toBeUndefined();
    expect(importProblem('node-agent/src/node-agent.ts', './index.ts')).toBeUndefined();
  });

  it('holds in every TypeScript file of the repository', async () => {
    const problems: string[] = [];
    for (const root of ROOTS) {
      for (const file of await typeScriptFiles(root)) {
        for (const specifier of specifiersOf(await readFile(path.join(REPO, file), 'utf8'))) {
          const problem = importProblem(file, specifier);
          if (problem !== undefined) problems.push(problem);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});
