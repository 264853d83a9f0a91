/** `kubectl cryo migrate <pod>`: create a Migration (the Cryo controller does the work) and with --wait follow it. */
import { CHECKPOINT_API_VERSION, isMigrationFinished, MIGRATION_KIND, type Migration, type MigrationSpec } from '@cryo/common';
import { durationValue, flag, outputValue, positionals, stringValue } from '../args.ts';
import { deadline, Progress, timeoutError, type Command, type CommandContext } from '../command.ts';
import { CliError, EXIT, fromApiError, usageError } from '../errors.ts';
import { describeEvent, followObject } from '../follow-object.ts';
import { line, type Io } from '../io.ts';
import type { Kube } from '../kube.ts';
import { isStructured, printStructured, qualifiedName } from '../output.ts';
import { createMigration, listObjects, MIGRATIONS } from '../resources.ts';
import { readPod } from './checkpoint.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Move a running pod to another node with its state (creates a Migration); --wait follows it',
  options: {
    to: { type: 'string' },
    name: { type: 'string' },
    'storage-class': { type: 'string' },
    reason: { type: 'string' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
    output: { type: 'string', short: 'o' },
  },
  help: `Move a running pod to another node with its state: creates a Migration. The Cryo
controller checkpoints the pod, stops it through the Eviction API (PodDisruptionBudgets
apply), and brings it back from the checkpoint on the target: a bare pod is re-created there,
a Deployment's or StatefulSet's replacement starts from the checkpoint.

Usage:
  kubectl cryo migrate <pod> [flags]

Examples:
  # Anywhere but its current node, and follow it to the end
  kubectl cryo migrate web-7c9f8-x2vqz -n shop --wait

  # To node worker-3, through the storage class "team-registry"
  kubectl cryo migrate web-7c9f8-x2vqz --to worker-3 --storage-class team-registry --wait --timeout 15m

Flags:
  --to <node>               the target node (default: any node the scheduler picks but the source)
  --name <name>             the Migration's name (default: <pod>-<random suffix>)
  --storage-class <class>   the CheckpointStorageClass its Checkpoint uses (default: the namespace's default)
  --reason <text>           passed on to the Checkpoint, and so to the app's hooks
  --wait                    follow the Migration until Succeeded or Failed
  --timeout <duration>      how long --wait waits (default 10m; 0: no limit)
  -o, --output <format>     json, yaml or name: print the Migration so (after --wait: as it ended)

Exit code 1 when it Failed (the message says at which step). Interrupting --wait loses
nothing: the Migration carries on in the cluster (kubectl cryo describe migration <name>).`,
  run: runMigrate,
};

async function runMigrate(ctx: CommandContext): Promise<number> {
  const { values } = ctx.parsed;
  const [podName] = positionals('migrate', ctx.parsed, ['pod']);
  const to = stringValue(values, 'to');
  const name = stringValue(values, 'name');
  const storageClassName = stringValue(values, 'storage-class');
  const reason = stringValue(values, 'reason');
  const wait = flag(values, 'wait');
  const timeoutSeconds = durationValue(values, 'timeout', '10m');
  const format = outputValue(values, ['json', 'yaml', 'name']);
  const kube = ctx.kube();
  const { namespace } = kube;

  const pod = await readPod(kube, namespace, podName);
  if (to !== undefined) {
    if (to === pod.spec?.nodeName) throw usageError(`--to ${to}: pod ${podName} already runs there; name another node, or leave --to out to let the scheduler pick one`);
    try {
      await kube.core.readNode({ name: to });
    } catch (err) {
      const mapped = fromApiError(err, { server: kube.server, what: `node "${to}"`, listHint: 'kubectl get nodes' });
      if (mapped.exitCode === EXIT.NOT_FOUND && !/forbidden|credentials/.test(mapped.message)) throw mapped;
    }
  }
  const running = await unfinishedMigrationOf(kube, namespace, podName);
  if (running !== undefined) {
    throw new CliError(EXIT.FAILED, `pod ${podName} is already being migrated by Migration ${running.metadata?.name} (${running.status?.phase ?? 'Pending'}); follow it: kubectl cryo describe migration -n ${namespace} ${running.metadata?.name}`);
  }

  const spec: MigrationSpec = { podName, ...(to === undefined ? {} : { targetNodeName: to }), ...(storageClassName === undefined ? {} : { storageClassName }), ...(reason === undefined ? {} : { reason }) };
  const created = await create(kube, { apiVersion: CHECKPOINT_API_VERSION, kind: MIGRATION_KIND, metadata: { namespace, ...(name === undefined ? { generateName: `${podName}-` } : { name }) }, spec });
  const migrationName = created.metadata!.name!;
  if (!wait) {
    if (isStructured(format)) printStructured(ctx.io.stdout, format, [created], true, (o) => qualifiedName(MIGRATIONS, o));
    else line(ctx.io.stdout, `${qualifiedName(MIGRATIONS, created)} created`);
    return EXIT.OK;
  }
  const progress = ctx.io.stdout.isTTY && format === undefined ? new Progress(ctx.io.stdout) : undefined;
  progress?.line(`${qualifiedName(MIGRATIONS, created)} created: pod ${podName} from node ${pod.spec?.nodeName ?? '?'} to ${to ?? 'another node'}`);
  const final = await followMigration(ctx, kube, namespace, migrationName, timeoutSeconds, progress);
  printMigrationResult(ctx.io, final, format, progress);
  if (final.status?.phase === 'Failed') throw new CliError(EXIT.FAILED, `Migration ${migrationName} Failed: ${final.status.message ?? 'no message'} (kubectl cryo describe migration -n ${namespace} ${migrationName})`);
  return EXIT.OK;
}

async function create(kube: Kube, body: Migration): Promise<Migration> {
  try {
    return await createMigration(kube, body);
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `namespace ${body.metadata?.namespace}` });
  }
}

/** A Migration of this pod that has not finished: a second one would race it. */
export async function unfinishedMigrationOf(kube: Kube, namespace: string, podName: string): Promise<Migration | undefined> {
  try {
    const { items } = await listObjects<Migration>(kube, MIGRATIONS, namespace);
    return items.find((m) => m.spec?.podName === podName && !isMigrationFinished(m.status?.phase));
  } catch (err) {
    throw fromApiError(err, { server: kube.server });
  }
}

/** Follows one Migration to Succeeded or Failed, printing phases and Events on a terminal. */
export async function followMigration(ctx: CommandContext, kube: Kube, namespace: string, name: string, timeoutSeconds: number, progress: Progress | undefined, until: (m: Migration) => boolean = (m) => isMigrationFinished(m.status?.phase)): Promise<Migration> {
  let lastPhase: string | undefined;
  const limit = deadline(ctx.signal, timeoutSeconds);
  try {
    return await followObject<Migration>({
      kube,
      resource: MIGRATIONS,
      namespace,
      name,
      isDone: until,
      onChange: (m) => {
        const phase = m.status?.phase ?? 'Pending';
        if (phase === lastPhase) return;
        lastPhase = phase;
        progress?.line(`${namespace}/${name} ${phase}${m.status?.message ? `: ${m.status.message}` : ''}`);
      },
      ...(progress === undefined ? {} : { onEvent: (event) => progress.line(`${namespace}/${name} event ${describeEvent(event)}`) }),
      signal: limit.signal,
    });
  } catch (err) {
    throw timeoutError(err, `Migration ${name} (phase ${lastPhase ?? 'Pending'})`, `the Migration carries on: kubectl cryo describe migration -n ${namespace} ${name}`);
  } finally {
    limit.dispose();
  }
}

function printMigrationResult(io: Io, migration: Migration, format: ReturnType<typeof outputValue>, progress: Progress | undefined): void {
  const status = migration.status ?? {};
  const summary = `${status.phase}${status.targetPodName ? `: pod ${status.targetPodName}` : ''}${status.targetNodeName ? ` on node ${status.targetNodeName}` : ''}${status.downtimeSeconds === undefined ? '' : ` (downtime ${status.downtimeSeconds.toFixed(1)}s)`}`;
  if (progress !== undefined) progress.line(summary);
  else if (isStructured(format)) printStructured(io.stdout, format, [migration], true, (o) => qualifiedName(MIGRATIONS, o));
  else line(io.stdout, `${qualifiedName(MIGRATIONS, migration)} ${summary}`);
}
