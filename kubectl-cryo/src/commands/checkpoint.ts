/** `kubectl cryo checkpoint <pod>`: create a Checkpoint of a running pod, and with --wait follow it to its end. */
import type { V1Pod } from '@kubernetes/client-node';
import { CHECKPOINT_API_VERSION, CHECKPOINT_KIND, formatBytes, storageClassAllows, type Checkpoint, type CheckpointPhase } from '@cryo/common';
import { durationValue, flag, listValue, outputValue, positionals, stringValue } from '../args.ts';
import { deadline, nameOf, Progress, timeoutError, type Command, type CommandContext } from '../command.ts';
import { CliError, EXIT, fromApiError, usageError } from '../errors.ts';
import { describeEvent, followObject } from '../follow-object.ts';
import { line } from '../io.ts';
import type { Kube } from '../kube.ts';
import { isStructured, printStructured, qualifiedName } from '../output.ts';
import { CHECKPOINTS, createCheckpoint, getStorageClass, listStorageClasses } from '../resources.ts';

const FINISHED: readonly CheckpointPhase[] = ['Succeeded', 'Failed', 'Expired'];

export const checkpointCommand: Command = {
  name: 'checkpoint',
  aliases: ['ckpt'],
  summary: 'Checkpoint a running pod (creates a Checkpoint); --wait follows it to Succeeded or Failed',
  options: {
    name: { type: 'string' },
    containers: { type: 'string' },
    'storage-class': { type: 'string' },
    reason: { type: 'string' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
    output: { type: 'string', short: 'o' },
  },
  help: `Checkpoint a running pod: creates a Checkpoint naming it. The node agent on the pod's node
runs the app's pre-checkpoint hooks, checkpoints each container and stores it.

Usage:
  kubectl cryo checkpoint <pod> [flags]

Examples:
  # Checkpoint every container of pod web-7c9f8-x2vqz, and wait until it is stored
  kubectl cryo checkpoint web-7c9f8-x2vqz -n shop --wait

  # Only container "app", into the storage class "team-registry", under a chosen name
  kubectl cryo checkpoint web-7c9f8-x2vqz --containers app --storage-class team-registry --name web-warm

  # In a script: wait up to 10 minutes, then read the result as JSON
  kubectl cryo checkpoint web-7c9f8-x2vqz --wait --timeout 10m -o json | jq .status.containers

Flags:
  --name <name>             the Checkpoint's name (default: <pod>-<random suffix>)
  --containers <a,b>        only these containers (default: all of the pod's)
  --storage-class <class>   a CheckpointStorageClass open to the namespace (default: the namespace's default class)
  --reason <text>           passed to the app's pre-checkpoint hooks (e.g. "before upgrade")
  --wait                    follow the Checkpoint until Succeeded, Failed or Expired
  --timeout <duration>      how long --wait waits (default 5m; 0: no limit)
  -o, --output <format>     json, yaml or name: print the Checkpoint so (after --wait: as it ended)

On a terminal, --wait prints progress: phase changes, the Checkpoint's Events, and each
container's size and restore reference. Exit code 1 when it Failed (the message says why).
Interrupting --wait loses nothing: the Checkpoint carries on in the cluster
(kubectl cryo describe checkpoint <name>).`,
  run: runCheckpoint,
};

async function runCheckpoint(ctx: CommandContext): Promise<number> {
  const { values } = ctx.parsed;
  const [podName] = positionals('checkpoint', ctx.parsed, ['pod']);
  const containers = listValue(values, 'containers');
  const storageClassName = stringValue(values, 'storage-class');
  const reason = stringValue(values, 'reason');
  const name = stringValue(values, 'name');
  const wait = flag(values, 'wait');
  const timeoutSeconds = durationValue(values, 'timeout', '5m');
  const format = outputValue(values, ['json', 'yaml', 'name']);
  const kube = ctx.kube();
  const { namespace } = kube;

  const pod = await readPod(kube, namespace, podName);
  if (containers !== undefined) {
    const known = (pod.spec?.containers ?? []).map((c) => c.name);
    const unknown = containers.filter((c) => !known.includes(c));
    if (unknown.length > 0) throw usageError(`--containers: pod ${podName} has no container ${unknown.map((c) => `"${c}"`).join(', ')}; its containers are ${known.join(', ')}`);
  }
  if (pod.status?.phase !== 'Running') {
    throw new CliError(EXIT.FAILED, `pod ${podName} is ${pod.status?.phase ?? 'not running yet'}, and only a Running pod can be checkpointed; wait until kubectl get pod -n ${namespace} ${podName} shows Running`);
  }
  if (storageClassName !== undefined) await checkStorageClass(kube, storageClassName, namespace);

  const body: Checkpoint = {
    apiVersion: CHECKPOINT_API_VERSION,
    kind: CHECKPOINT_KIND,
    metadata: { namespace, ...(name === undefined ? { generateName: `${podName}-` } : { name }) },
    spec: {
      podName,
      ...(containers === undefined ? {} : { containers }),
      ...(storageClassName === undefined ? {} : { storageClassName }),
      ...(reason === undefined ? {} : { reason }),
    },
  };
  let created: Checkpoint;
  try {
    created = await createCheckpoint(kube, body);
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `namespace ${namespace}` });
  }
  const checkpointName = created.metadata!.name!;

  if (!wait) {
    if (isStructured(format)) printStructured(ctx.io.stdout, format, [created], true, (o) => qualifiedName(CHECKPOINTS, o));
    else {
      line(ctx.io.stdout, `${qualifiedName(CHECKPOINTS, created)} created`);
      if (ctx.io.stdout.isTTY) line(ctx.io.stdout, `follow it: kubectl cryo describe checkpoint -n ${namespace} ${checkpointName}   (or: kubectl cryo checkpoint ... --wait)`);
    }
    return EXIT.OK;
  }

  const progress = ctx.io.stdout.isTTY && format === undefined ? new Progress(ctx.io.stdout) : undefined;
  progress?.line(`${qualifiedName(CHECKPOINTS, created)} created for pod ${podName} on node ${pod.spec?.nodeName ?? '?'}`);
  let lastPhase: string | undefined;
  const limit = deadline(ctx.signal, timeoutSeconds);
  let final: Checkpoint;
  try {
    final = await followObject<Checkpoint>({
      kube,
      resource: CHECKPOINTS,
      namespace,
      name: checkpointName,
      isDone: (c) => FINISHED.includes(c.status?.phase as CheckpointPhase),
      onChange: (c) => {
        const phase = c.status?.phase ?? 'Pending';
        if (phase === lastPhase) return;
        lastPhase = phase;
        // The end is summed up below (or in the error), with the containers.
        if (FINISHED.includes(phase)) return;
        const where = c.status?.nodeName === undefined ? '' : ` on node ${c.status.nodeName}`;
        progress?.line(`${phase}${where}${c.status?.message ? `: ${c.status.message}` : ''}`);
      },
      ...(progress === undefined ? {} : { onEvent: (event) => progress.line(`event ${describeEvent(event)}`) }),
      signal: limit.signal,
    });
  } catch (err) {
    throw timeoutError(err, `Checkpoint ${checkpointName} (phase ${lastPhase ?? 'Pending'})`, `the Checkpoint carries on: kubectl cryo describe checkpoint -n ${namespace} ${checkpointName}`);
  } finally {
    limit.dispose();
  }

  const status = final.status ?? {};
  if (progress !== undefined) {
    for (const c of status.containers ?? []) progress.line(`  ${c.name}  ${c.sizeBytes === undefined ? '' : formatBytes(c.sizeBytes)}  ${c.restoreReference}`);
    if (status.phase === 'Succeeded') progress.line(`Succeeded: ${status.message ?? ''}${status.totalSize ? ` (${status.totalSize})` : ''}`);
    if (status.phase === 'Succeeded') progress.line(`restore it: kubectl cryo restore -n ${namespace} ${checkpointName}`);
  } else if (isStructured(format)) {
    printStructured(ctx.io.stdout, format, [final], true, (o) => qualifiedName(CHECKPOINTS, o));
  } else {
    line(ctx.io.stdout, `${qualifiedName(CHECKPOINTS, final)} ${status.phase}${status.totalSize ? ` ${status.totalSize}` : ''}`);
  }
  if (status.phase !== 'Succeeded') {
    throw new CliError(EXIT.FAILED, `Checkpoint ${nameOf(final)} ${status.phase}: ${status.message ?? 'no message'} (kubectl cryo describe checkpoint -n ${namespace} ${checkpointName})`);
  }
  return EXIT.OK;
}

export async function readPod(kube: Kube, namespace: string, name: string): Promise<V1Pod> {
  try {
    return await kube.core.readNamespacedPod({ namespace, name });
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `pod "${name}" in namespace ${namespace}`, listHint: `kubectl get pods -n ${namespace}` });
  }
}

/** A class that does not exist or is not open to the namespace would fail the Checkpoint: say so now. Not allowed to read classes: the agent decides. */
async function checkStorageClass(kube: Kube, name: string, namespace: string): Promise<void> {
  try {
    const storageClass = await getStorageClass(kube, name);
    if (!storageClassAllows(storageClass, namespace)) {
      throw new CliError(EXIT.FAILED, `CheckpointStorageClass "${name}" is not open to namespace ${namespace} (its spec.namespaces: ${(storageClass.spec?.namespaces ?? []).join(', ') || 'none'}); pick another, or ask the administrator to add ${namespace}`);
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    const mapped = fromApiError(err, { server: kube.server });
    if (mapped.exitCode !== EXIT.NOT_FOUND || /forbidden|credentials/.test(mapped.message)) return;
    let open: string[] = [];
    try {
      open = (await listStorageClasses(kube)).filter((c) => storageClassAllows(c, namespace)).map(nameOf);
    } catch {
      // Only for the hint.
    }
    throw new CliError(EXIT.NOT_FOUND, `CheckpointStorageClass "${name}" not found; the classes open to namespace ${namespace}: ${open.length === 0 ? 'none' : open.join(', ')} (kubectl get checkpointstorageclasses)`);
  }
}
