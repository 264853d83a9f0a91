#!/usr/bin/env node
/**
 * The node agent's local mode from the command line: checkpoints one Podman container into a
 * Cryo store and prints what restores it, as JSON on stdout (progress and errors go to stderr).
 *
 *   node node-agent/src/local/local-main.ts checkpoint <container> --directory <dir>
 *   node node-agent/src/local/local-main.ts checkpoint <container> --registry <host[:port]/path> [--registry-insecure] [--registry-auth-file F]
 *
 * `--help` lists every flag.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { CheckpointStore } from '../storage/checkpoint-store.ts';
import { DEFAULT_PODMAN_ARGV } from './podman-command.ts';

// The stores and the archive reader are imported once the arguments are known to be good: what
// they pull in (the Kubernetes client, through @cryo/common) takes most of a second to load.

const USAGE = `Usage: local-main.ts checkpoint <container> (--directory <dir> | --registry <repository> [registry flags]) [flags]

Checkpoints a running Podman container (podman container checkpoint --leave-running --export, as
CRI-O does it: no --tcp-established) into a Cryo store and prints the restore reference as JSON.

Store (one of):
  --directory <dir>              archive files under <dir>/<namespace>/<pod>/<container>/
  --registry <host[:port]/path>  a checkpoint image pushed to this repository, pinned by digest
    --registry-insecure          plain http (a registry on a trusted network, e.g. 127.0.0.1:5000)
    --registry-auth-file <file>  docker config JSON with credentials for the registry
    --registry-ca-file <file>    CA bundle for the registry's certificate, besides the system's

Flags:
  --name <name>                  the checkpoint's name in the store (default <container>-<UTC time>)
  --namespace <ns>               the namespace recorded in the store (default podman)
  --stop                         stop the container after the dump (default: it keeps running)
  --export-dir <dir>             where podman writes the archive before it is stored (default: a temp dir)
  --podman <command>             how to run podman, split at spaces (default "podman")
  --podman-path-prefix <prefix>  what podman sees a path of this process as, when it runs in another
                                 mount namespace (e.g. /host for the CRIU lab)
  --timeout <seconds>            how long podman's checkpoint may take (default 120)
  -h, --help                     this text

Restore: --directory: podman container restore --import <restoreReference> [--name N] [--pod P]
         --registry:  podman pull <restoreReference> && podman container restore <restoreReference>
`;

class UsageError extends Error {}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      directory: { type: 'string' },
      registry: { type: 'string' },
      'registry-insecure': { type: 'boolean', default: false },
      'registry-auth-file': { type: 'string' },
      'registry-ca-file': { type: 'string' },
      name: { type: 'string' },
      namespace: { type: 'string' },
      stop: { type: 'boolean', default: false },
      'export-dir': { type: 'string' },
      podman: { type: 'string' },
      'podman-path-prefix': { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  return { values, positionals };
}

async function storeOf(values: ReturnType<typeof parse>['values']): Promise<CheckpointStore> {
  if ((values.directory === undefined) === (values.registry === undefined)) throw new UsageError('give exactly one store: --directory <dir> or --registry <repository>');
  if (values.directory !== undefined) {
    if (values['registry-insecure'] || values['registry-auth-file'] !== undefined || values['registry-ca-file'] !== undefined) throw new UsageError('--registry-* flags need --registry');
    const [{ DirectoryStore }, { silentLogger }] = await Promise.all([import('../storage/directory/directory-store.ts'), import('@cryo/common')]);
    return new DirectoryStore({ root: values.directory, logger: silentLogger() });
  }
  const { RegistryStore } = await import('../storage/registry/registry-store.ts');
  return new RegistryStore({
    repository: values.registry!,
    insecure: values['registry-insecure'],
    ...(values['registry-auth-file'] !== undefined ? { dockerConfigJson: await readFile(values['registry-auth-file'], 'utf8') } : {}),
    ...(values['registry-ca-file'] !== undefined ? { caBundle: await readFile(values['registry-ca-file']) } : {}),
  });
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [command, container, ...rest] = positionals;
  if (command !== 'checkpoint') throw new UsageError(command === undefined ? 'no command: the command is "checkpoint"' : `unknown command "${command}": the command is "checkpoint"`);
  if (container === undefined) throw new UsageError('checkpoint needs the container (name or id)');
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  const timeoutSeconds = values.timeout === undefined ? 120 : Number(values.timeout);
  if (!(timeoutSeconds > 0)) throw new UsageError(`--timeout needs a positive number of seconds, got "${values.timeout}"`);

  const store = await storeOf(values);
  const [{ localCheckpoint }, { readCheckpointArchive }] = await Promise.all([import('./local-checkpoint.ts'), import('../archive/checkpoint-archive.ts')]);
  const podmanArgv = values.podman !== undefined ? values.podman.split(/\s+/).filter(Boolean) : DEFAULT_PODMAN_ARGV;
  const prefix = values['podman-path-prefix'];
  const result = await localCheckpoint({
    container,
    store,
    readArchive: readCheckpointArchive,
    podmanArgv,
    ...(prefix !== undefined ? { podmanPath: (path: string) => `${prefix.replace(/\/+$/, '')}${path}` } : {}),
    leaveRunning: !values.stop,
    ...(values.name !== undefined ? { checkpointName: values.name } : {}),
    ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
    ...(values['export-dir'] !== undefined ? { exportDir: values['export-dir'] } : {}),
    timeoutMs: timeoutSeconds * 1000,
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
