/** `kubectl cryo describe checkpoint|migration <name>`: everything about one object, and its Events. */
import type { V1Condition } from '@kubernetes/client-node';
import { annotations, formatBytes, type Checkpoint, type Migration } from '@cryo/common';
import { positionals } from '../args.ts';
import type { Command, CommandContext } from '../command.ts';
import { EXIT, fromApiError } from '../errors.ts';
import { listEvents, type ObjectEvent } from '../events.ts';
import { age, table } from '../output.ts';
import { CHECKPOINTS, getObject } from '../resources.ts';
import { resourceNamed } from './get.ts';

export const describeCommand: Command = {
  name: 'describe',
  summary: 'Show one Checkpoint or Migration in full: status, containers, storage, Events',
  options: {},
  help: `Show one Checkpoint or Migration in full, with its Events.

Usage:
  kubectl cryo describe checkpoint <name>
  kubectl cryo describe migration <name>

Examples:
  # Why did it fail? Phase, message, each container, and the node agent's Events
  kubectl cryo describe checkpoint web-warm -n shop

  # Where is the migration, and what did the controller say?
  kubectl cryo describe migration web-x2vqz-7hq2c

Exit code 3 when it does not exist.`,
  run: runDescribe,
};

async function runDescribe(ctx: CommandContext): Promise<number> {
  const [type, name] = positionals('describe', ctx.parsed, ['checkpoint|migration', 'name']);
  const resource = resourceNamed(type, 'describe');
  const kube = ctx.kube();
  const { namespace } = kube;
  let obj: Checkpoint | Migration;
  try {
    obj = await getObject(kube, resource, namespace, name);
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `${resource.kind} "${name}" in namespace ${namespace}`, listHint: `kubectl cryo get ${resource.plural} -n ${namespace}` });
  }
  const events = await listEvents(kube, namespace, resource.kind, name);
  ctx.io.stdout.write(resource === CHECKPOINTS ? describeCheckpoint(obj as Checkpoint, events) : describeMigration(obj as Migration, events));
  return EXIT.OK;
}

type Field = [label: string, value: string | undefined];

function fields(list: readonly Field[]): string {
  const shown = list.filter((f): f is [string, string] => f[1] !== undefined && f[1] !== '');
  const width = Math.max(...shown.map(([label]) => label.length)) + 2;
  return shown.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}\n`).join('');
}

function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((l) => (l === '' ? l : `${by}${l}`))
    .join('\n');
}

function duration(start: string | undefined, end: string | undefined): string | undefined {
  if (start === undefined || end === undefined) return undefined;
  const seconds = (Date.parse(end) - Date.parse(start)) / 1000;
  return Number.isFinite(seconds) ? `${seconds.toFixed(1)}s` : undefined;
}

function seconds(value: number | undefined): string {
  return value === undefined ? '' : `${value.toFixed(1)}s`;
}

export function describeCheckpoint(checkpoint: Checkpoint, events: readonly ObjectEvent[], now = Date.now()): string {
  const status = checkpoint.status ?? {};
  const name = checkpoint.metadata?.name ?? '';
  const storage = status.storage;
  const storageText =
    storage === undefined
      ? undefined
      : [storage.type, storage.type === 'directory' ? (storage.shared ? 'shared by every node' : `on node ${status.nodeName ?? '?'} only`) : undefined, storage.className ? `class ${storage.className}` : undefined, storage.pullSecretName ? `pull Secret ${storage.pullSecretName}` : undefined]
          .filter((s) => s !== undefined)
          .join(', ');
  let out = fields([
    ['Name', name],
    ['Namespace', checkpoint.metadata?.namespace],
    ['Created', `${String(checkpoint.metadata?.creationTimestamp ?? '')} (${age(checkpoint.metadata?.creationTimestamp, now)} ago)`],
    ['Pod', checkpoint.spec?.podName],
    ['Containers', (checkpoint.spec?.containers ?? []).join(', ') || 'all'],
    ['Storage Class', checkpoint.spec?.storageClassName ?? (checkpoint.spec?.storage === undefined ? '(the namespace default)' : '(spec.storage)')],
    ['Reason', checkpoint.spec?.reason],
    ['Purpose', checkpoint.spec?.purpose],
    ['Phase', status.phase ?? 'Pending'],
    ['Message', status.message],
    ['Node', status.nodeName],
    ['Storage', storageText],
    ['Started', status.startTime],
    ['Completed', status.completionTime === undefined ? undefined : `${status.completionTime} (took ${duration(status.startTime, status.completionTime) ?? '?'})`],
    ['Total Size', status.totalSize ?? (status.totalSizeBytes === undefined ? undefined : formatBytes(status.totalSizeBytes))],
    ['Pod Checkpoint', status.podCheckpoint === undefined ? undefined : `${status.podCheckpoint.reference} (${status.podCheckpoint.referenceType})`],
  ]);
  const containers = status.containers ?? [];
  if (containers.length > 0) {
    out += 'Checkpointed Containers:\n';
    const rows = [['NAME', 'SIZE', 'RUNTIME', 'CHECKPOINT', 'STORE', 'REFERENCE'], ...containers.map((c) => [c.name, c.sizeBytes === undefined ? '' : formatBytes(c.sizeBytes), c.runtime ?? '', seconds(c.checkpointDurationSeconds), seconds(c.storeDurationSeconds), c.restoreReference])];
    out += indent(table(rows));
    for (const c of containers) {
      const extra = fields([
        ['Base image', c.baseImage],
        ['Mounts', (c.mountDestinations ?? []).join(', ')],
      ]);
      if (extra !== '') out += indent(`${c.name}:\n${indent(extra)}`);
    }
  }
  if (status.phase === 'Succeeded' || status.phase === 'Expired') {
    out +=
      status.podTemplate === undefined
        ? `Pod Template:  not recorded (taken before Cryo recorded pod templates): restore single containers with ${annotations.RESTORE_FROM}: ${name}\n`
        : `Pod Template:  recorded: ${status.phase === 'Succeeded' ? `kubectl cryo restore ${name} re-creates the whole pod` : 'but the data is gone (Expired)'}\n`;
  }
  out += conditions(status.conditions);
  out += eventsText(events, now);
  return out;
}

export function describeMigration(migration: Migration, events: readonly ObjectEvent[], now = Date.now()): string {
  const status = migration.status ?? {};
  const target = migration.spec?.restartInPlace ? '(the same node, after it restarts)' : (migration.spec?.targetNodeName ?? '(any other node)');
  let out = fields([
    ['Name', migration.metadata?.name],
    ['Namespace', migration.metadata?.namespace],
    ['Created', `${String(migration.metadata?.creationTimestamp ?? '')} (${age(migration.metadata?.creationTimestamp, now)} ago)`],
    ['Pod', migration.spec?.podName],
    ['Target', target],
    ['Storage Class', migration.spec?.storageClassName],
    ['Reason', migration.spec?.reason],
    ['Phase', status.phase ?? 'Pending'],
    ['Message', status.message],
    ['Source Node', status.sourceNodeName],
    ['Checkpoint', status.checkpointName],
    ['Target Pod', status.targetPodName],
    ['Target Node', status.targetNodeName],
    ['Started', status.startTime],
    ['Completed', status.completionTime === undefined ? undefined : `${status.completionTime} (took ${duration(status.startTime, status.completionTime) ?? '?'})`],
    ['Downtime', status.downtimeSeconds === undefined ? undefined : seconds(status.downtimeSeconds)],
  ]);
  out += conditions(status.conditions);
  out += eventsText(events, now);
  return out;
}

function conditions(list: readonly V1Condition[] | undefined): string {
  if (list === undefined || list.length === 0) return '';
  return `Conditions:\n${indent(table([['TYPE', 'STATUS', 'REASON', 'MESSAGE'], ...list.map((c) => [c.type, c.status, c.reason ?? '', c.message ?? ''])]))}`;
}

function eventsText(events: readonly ObjectEvent[], now: number): string {
  if (events.length === 0) return 'Events:  <none>\n';
  const rows = [['TYPE', 'REASON', 'AGE', 'FROM', 'MESSAGE'], ...events.map((e) => [e.type, e.reason, e.time === undefined ? '<unknown>' : age(new Date(e.time), now) + (e.count > 1 ? ` (x${e.count})` : ''), e.from, e.note])];
  return `Events:\n${indent(table(rows))}`;
}
