#!/usr/bin/env node
/**
 * The node agent's local mode from the command line: checkpoints one Podman container into a
 * Cryo store and prints what restores it, as JSON on stdout (progress and errors go to stderr).
 *
 *   node node-agent/src/local/local-main.ts checkpoint <container> --directory <dir>
 *   node node-agent/src/local/local-main.ts checkpoint <container> --registry-repository <host[:port]/path> [--registry-insecure] [--registry-auth-file F]
 *
 * Flags are read as the agent reads its own (@cryo/common/options), with the agent's names,
 * env vars and checks for the store; `--help` lists every flag.
 */
import { readFile } from 'node:fs/promises';
import {
  formatDuration,
  helpText,
  OptionError,
  parseBoolean,
  parseDurationAtLeast,
  parseOptionalAbsolutePath,
  parseString,
  readCommandLine,
  type OptionSpec,
} from '@cryo/common/options';
import type { CheckpointStore } from '../storage/checkpoint-store.ts';
import { storeOptionSpecs } from '../store-options.ts';
import { DEFAULT_PODMAN_ARGV } from './podman-command.ts';

// The stores and the archive reader are imported once the arguments are known to be good: what
// they pull in (the Kubernetes client, through @cryo/common) takes most of a second to load.

export const localOptionSpecs = {
  directory: { ...storeOptionSpecs.directory, description: 'Store: archive files under <dir>/<namespace>/<pod>/<container>/.' },
  registryRepository: { ...storeOptionSpecs.registryRepository, description: 'Store: a checkpoint image pushed to this repository (<host>[:port]/<path>), pinned by digest.' },
  registryInsecure: storeOptionSpecs.registryInsecure,
  registryAuthFile: storeOptionSpecs.registryAuthFile,
  registryCaFile: storeOptionSpecs.registryCaFile,
  name: {
    flag: '--name', default: '', defaultText: '<container>-<UTC time>', parse: parseString,
    description: "The checkpoint's name in the store.",
  } satisfies OptionSpec<string>,
  namespace: {
    flag: '--namespace', default: 'podman', parse: parseString,
    description: 'The namespace recorded in the store.',
  } satisfies OptionSpec<string>,
  stop: {
    flag: '--stop', default: false, parse: parseBoolean,
    description: 'Stop the container after the dump (otherwise it keeps running).',
  } satisfies OptionSpec<boolean>,
  exportDir: {
    flag: '--export-dir', default: '', defaultText: '(a new temporary directory)', parse: parseOptionalAbsolutePath,
    description: 'Where podman writes the archive before it is stored.',
  } satisfies OptionSpec<string>,
  podman: {
    flag: '--podman', default: DEFAULT_PODMAN_ARGV, parse: (raw) => raw.split(/\s+/).filter(Boolean), format: (argv) => argv.join(' '),
    description: 'How to run podman, split at spaces.',
  } satisfies OptionSpec<readonly string[]>,
  podmanPathPrefix: {
    flag: '--podman-path-prefix', default: '', parse: parseOptionalAbsolutePath,
    description: 'What podman sees a path of this process as, when it runs in another mount namespace (e.g. /host for the CRIU lab).',
  } satisfies OptionSpec<string>,
  timeoutSeconds: {
    flag: '--timeout', default: 120, parse: parseDurationAtLeast(0.001), format: formatDuration,
    description: "How long podman's checkpoint may take.",
  } satisfies OptionSpec<number>,
};

const USAGE = helpText(
  'local-main.ts checkpoint <container> (--directory <dir> | --registry-repository <repository> [--registry-* flags]) [flags]',
  localOptionSpecs,
  `Checkpoints a running Podman container (podman container checkpoint --leave-running --export, as
CRI-O does it: no --tcp-established) into a Cryo store and prints the restore reference as JSON.
Restore: --directory: podman container restore --import <restoreReference> [--name N] [--pod P]
         --registry-repository: podman pull <restoreReference> && podman container restore <restoreReference>`,
);

class UsageError extends Error {}

type LocalOptions = ReturnType<typeof readCommandLine<typeof localOptionSpecs>>['values'];

async function storeOf(options: LocalOptions): Promise<CheckpointStore> {
  if ((options.directory === '') === (options.registryRepository === '')) throw new UsageError('give exactly one store: --directory <dir> or --registry-repository <repository>');
  if (options.directory !== '') {
    if (options.registryInsecure || options.registryAuthFile !== '' || options.registryCaFile !== '') throw new UsageError('--registry-* flags need --registry-repository');
    const [{ DirectoryStore }, { silentLogger }] = await Promise.all([import('../storage/directory/directory-store.ts'), import('@cryo/common')]);
    return new DirectoryStore({ root: options.directory, logger: silentLogger() });
  }
  const { RegistryStore } = await import('../storage/registry/registry-store.ts');
  return new RegistryStore({
    repository: options.registryRepository,
    insecure: options.registryInsecure,
    ...(options.registryAuthFile !== '' ? { dockerConfigJson: await readFile(options.registryAuthFile, 'utf8') } : {}),
    ...(options.registryCaFile !== '' ? { caBundle: await readFile(options.registryCaFile) } : {}),
  });
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let parsed: ReturnType<typeof readCommandLine<typeof localOptionSpecs>>;
  try {
    parsed = readCommandLine(localOptionSpecs, argv, process.env, { positionals: true });
  } catch (error) {
    throw error instanceof OptionError ? new UsageError(error.message) : error;
  }
  const { values: options, positionals } = parsed;
  const [command, container, ...rest] = positionals;
  if (command !== 'checkpoint') throw new UsageError(command === undefined ? 'no command: the command is "checkpoint"' : `unknown command "${command}": the command is "checkpoint"`);
  if (container === undefined) throw new UsageError('checkpoint needs the container (name or id)');
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);

  const store = await storeOf(options);
  const [{ localCheckpoint }, { readCheckpointArchive }] = await Promise.all([import('./local-checkpoint.ts'), import('../archive/checkpoint-archive.ts')]);
  const prefix = options.podmanPathPrefix.replace(/\/+$/, '');
  const result = await localCheckpoint({
    container,
    store,
    readArchive: readCheckpointArchive,
    podmanArgv: options.podman,
    ...(prefix !== '' ? { podmanPath: (path: string) => `${prefix}${path}` } : {}),
    leaveRunning: !options.stop,
    ...(options.name !== '' ? { checkpointName: options.name } : {}),
    namespace: options.namespace,
    ...(options.exportDir !== '' ? { exportDir: options.exportDir } : {}),
    timeoutMs: options.timeoutSeconds * 1000,
  });
  process.stderr.write(
    `checkpointed ${container} in ${(result.checkpointDurationMs / 1000).toFixed(2)} s, stored ${(result.sizeBytes / 2 ** 20).toFixed(1)} MiB in the ${store.kind} store in ${(result.durationMs / 1000).toFixed(2)} s\n`,
  );
  const restoreCommand =
    result.referenceType === 'image'
      ? `podman pull ${result.restoreReference} && podman container restore ${result.restoreReference}`
      : `podman container restore --import ${result.restoreReference}`;
  const output = {
    restoreReference: result.restoreReference,
    referenceType: result.referenceType,
    sizeBytes: result.sizeBytes,
    digest: result.digest,
    checkpointName: result.checkpointName,
    container: result.archive.containerName,
    baseImage: result.archive.baseImage,
    mountDestinations: result.archive.mountDestinations,
    checkpointSeconds: Math.round(result.checkpointDurationMs) / 1000,
    storeSeconds: Math.round(result.durationMs) / 1000,
    restoreCommand,
  };
  process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) process.stderr.write(`local-main: ${error.message}\n\n${USAGE}`);
    else process.stderr.write(`local-main: checkpoint failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
