/** `kubectl cryo get [checkpoints|migrations] [name]`: list or read Cryo's objects, as kubectl get does. */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Checkpoint, Migration } from '@cryo/common';
import { flag, outputValue, positionals, stringValue, type OutputFormat } from '../args.ts';
import type { Command, CommandContext } from '../command.ts';
import { EXIT, fromApiError, usageError } from '../errors.ts';
import { line } from '../io.ts';
import { age, isStructured, printStructured, qualifiedName, table } from '../output.ts';
import { CHECKPOINTS, getObject, listObjects, MIGRATIONS, type ResourceInfo } from '../resources.ts';

/** What `get` and `describe` accept for each resource, as kubectl accepts plural, singular and short names. */
export const RESOURCE_NAMES: ReadonlyMap<string, ResourceInfo> = new Map([
  ...['checkpoints', 'checkpoint', 'ckpt', 'ckpts', 'checkpoints.cryo.dev', 'checkpoint.cryo.dev'].map((n) => [n, CHECKPOINTS] as const),
  ...['migrations', 'migration', 'mig', 'migs', 'migrations.cryo.dev', 'migration.cryo.dev'].map((n) => [n, MIGRATIONS] as const),
]);

export function resourceNamed(name: string, command: string): ResourceInfo {
  const resource = RESOURCE_NAMES.get(name.toLowerCase());
  if (resource === undefined) throw usageError(`unknown resource type "${name}": kubectl cryo ${command} knows checkpoints (ckpt) and migrations (mig)`);
  return resource;
}

export const getCommand: Command = {
  name: 'get',
  summary: 'List or show Checkpoints and Migrations (-o json|yaml|name|wide)',
  options: {
    output: { type: 'string', short: 'o' },
    'all-namespaces': { type: 'boolean', short: 'A' },
    selector: { type: 'string', short: 'l' },
  },
  help: `List Checkpoints (the default) or Migrations, or show one.

Usage:
  kubectl cryo get [checkpoints|migrations] [name] [flags]

Examples:
  # Checkpoints in the current namespace: pod, phase, size, age
  kubectl cryo get

  # Every namespace's Migrations, with source, target and downtime
  kubectl cryo get migrations -A -o wide

  # One Checkpoint as YAML
  kubectl cryo get checkpoint web-warm -o yaml

Flags:
  -o, --output <format>    json, yaml, name or wide (default: a table)
  -A, --all-namespaces     every namespace
  -l, --selector <labels>  only objects with these labels (app=web,tier!=db)

Exit code 3 when the named object does not exist.`,
  run: runGet,
};

async function runGet(ctx: CommandContext): Promise<number> {
  const { values } = ctx.parsed;
  const [type, name] = positionals('get', ctx.parsed, [], ['checkpoints|migrations', 'name']);
  const resource = resourceNamed(type ?? 'checkpoints', 'get');
  const format = outputValue(values);
  const all = flag(values, 'all-namespaces');
  const selector = stringValue(values, 'selector');
  if (name !== undefined && all) throw usageError('a name cannot be combined with -A: name the namespace with -n');
  const kube = ctx.kube();
  const namespace = all ? undefined : kube.namespace;

  let items: KubernetesObject[];
  try {
    items = name === undefined ? (await listObjects<KubernetesObject>(kube, resource, namespace, { labelSelector: selector })).items : [await getObject<KubernetesObject>(kube, resource, kube.namespace, name)];
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `${resource.kind} "${name}" in namespace ${kube.namespace}`, listHint: `kubectl cryo get ${resource.plural} -n ${kube.namespace}` });
  }
  if (isStructured(format)) {
    printStructured(ctx.io.stdout, format, items, name !== undefined, (o) => qualifiedName(resource, o));
    return EXIT.OK;
  }
  if (items.length === 0) {
    line(ctx.io.stderr, all ? 'No resources found' : `No resources found in ${kube.namespace} namespace.`);
    return EXIT.OK;
  }
  ctx.io.stdout.write(resource === CHECKPOINTS ? checkpointTable(items as Checkpoint[], format, all) : migrationTable(items as Migration[], format, all));
  return EXIT.OK;
}

export function checkpointTable(items: readonly Checkpoint[], format: OutputFormat | undefined, withNamespace: boolean, now = Date.now()): string {
  const wide = format === 'wide';
  const header = [...(withNamespace ? ['NAMESPACE'] : []), 'NAME', 'POD', 'PHASE', 'SIZE', 'AGE', ...(wide ? ['NODE', 'STORAGE', 'CONTAINERS', 'MESSAGE'] : [])];
  const rows = items.map((c) => {
    const status = c.status ?? {};
    const storage = status.storage === undefined ? '' : `${status.storage.type}${status.storage.className ? `/${status.storage.className}` : ''}`;
    return [
      ...(withNamespace ? [c.metadata?.namespace ?? ''] : []),
      c.metadata?.name ?? '',
      c.spec?.podName ?? '',
      status.phase ?? 'Pending',
      status.totalSize ?? '',
      age(c.metadata?.creationTimestamp, now),
      ...(wide ? [status.nodeName ?? '', storage, (status.containers ?? []).map((x) => x.name).join(',') || (c.spec?.containers ?? []).join(','), status.message ?? ''] : []),
    ];
  });
  return table([header, ...rows]);
}

export function migrationTable(items: readonly Migration[], format: OutputFormat | undefined, withNamespace: boolean, now = Date.now()): string {
  const wide = format === 'wide';
  const header = [...(withNamespace ? ['NAMESPACE'] : []), 'NAME', 'POD', 'PHASE', 'SOURCE', 'TARGET', 'AGE', ...(wide ? ['CHECKPOINT', 'TARGET-POD', 'DOWNTIME', 'MESSAGE'] : [])];
  const rows = items.map((m) => {
    const status = m.status ?? {};
    const target = status.targetNodeName ?? m.spec?.targetNodeName ?? (m.spec?.restartInPlace ? '(same node)' : '');
    return [
      ...(withNamespace ? [m.metadata?.namespace ?? ''] : []),
      m.metadata?.name ?? '',
      m.spec?.podName ?? '',
      status.phase ?? 'Pending',
      status.sourceNodeName ?? '',
      target,
      age(m.metadata?.creationTimestamp, now),
      ...(wide ? [status.checkpointName ?? '', status.targetPodName ?? '', status.downtimeSeconds === undefined ? '' : `${status.downtimeSeconds.toFixed(1)}s`, status.message ?? ''] : []),
    ];
  });
  return table([header, ...rows]);
}
