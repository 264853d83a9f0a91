/**
 * The clients the conformance suite runs: each is a command line that starts its conformance app.
 * Java is compiled once per run by hook-sdk-java/build.sh.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

export interface ConformanceClient {
  name: string;
  /** Builds what the command needs; returns the argv. */
  prepare(): Promise<string[]>;
}

export const nodeClient: ConformanceClient = {
  name: 'Node SDK',
  prepare: () => Promise.resolve([process.execPath, path.join(repoRoot, 'test/hook-conformance/node-conformance-app.ts')]),
};

export const javaClient: ConformanceClient = {
  name: 'Java 17 client',
  async prepare() {
    const out = path.join(repoRoot, '.tmp/java/classes');
    await run('bash', [path.join(repoRoot, 'hook-sdk-java/build.sh')], { env: { ...process.env, OUT: out }, timeout: 120_000 });
    return ['java', '-cp', out, 'dev.cryo.hooks.conformance.ConformanceApp'];
  },
};

export const conformanceClients: ConformanceClient[] = existsSync(path.join(repoRoot, 'hook-sdk-java/build.sh')) ? [nodeClient, javaClient] : [nodeClient];
