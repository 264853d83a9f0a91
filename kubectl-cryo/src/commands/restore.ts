/**
 * `kubectl cryo restore <checkpoint>`: re-create the whole pod from a Checkpoint's pod template
 * (podFromCheckpoint, shared with the Migration controller), once or as several copies; the
 * webhook then starts each checkpointed container from its checkpoint image.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { podFromCheckpoint, PodFromCheckpointError, podLabels, type Checkpoint } from '@cryo/common';
import { durationValue, flag, integerValue, outputValue, positionals, stringValue } from '../args.ts';
import { deadline, Progress, timeoutError, type Command, type CommandContext } from '../command.ts';
import { CliError, EXIT, fromApiError, usageError } from '../errors.ts';
import { follow } from '../follow.ts';
import { line } from '../io.ts';
import type { Kube } from '../kube.ts';
import { isStructured, printStructured } from '../output.ts';
import { CHECKPOINTS, getObject } from '../resources.ts';
import { podProblem, podState, isPodReady } from './pod-state.ts';

const MAX_COPIES = 100;

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'Re-create the whole checkpointed pod (or N copies) from a Checkpoint; --wait until Ready',
  options: {
    name: { type: 'string' },
    copies: { type: 'string' },
    node: { type: 'string' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
    output: { type: 'string', short: 'o' },
  },
  help: `Re-create the whole pod a Checkpoint was taken of: its labels, annotations and spec as it ran
(status.podTemplate), annotated cryo.dev/restore-from: <checkpoint>, so that Cryo's webhook
starts each checkpointed container from its checkpoint image (the others start afresh).

Usage:
  kubectl cryo restore <checkpoint> [flags]

Examples:
  # One pod, named <pod>-restored-<random>, wherever the scheduler puts it
  kubectl cryo restore web-warm -n shop

  # Three warm copies behind the same Service, and wait until all are Ready
  kubectl cryo restore web-warm --copies 3 --wait

  # One pod named web-b on node worker-2
  kubectl cryo restore web-warm --name web-b --node worker-2 --wait -o json

Flags:
  --name <name>          the pod's name; with --copies N: <name>-1 ... <name>-N
                         (default: generated, <checkpointed pod>-restored-<random>)
  --copies <N>           create N pods from the checkpoint (default 1, at most ${MAX_COPIES})
  --node <node>          run on this node: a required node affinity on the node's name, ANDed
                         with the pod's own (the scheduler still checks resources and taints;
                         spec.nodeName would bypass it)
  --wait                 wait until every pod is Ready; fail fast when one cannot start
  --timeout <duration>   how long --wait waits (default 5m; 0: no limit)
  -o, --output <format>  json, yaml or name: print the pods created (after --wait: as they are then)

What the new pods keep and lose:
  - They keep the app's labels, so Services route to them as to the original, and get the
    label cryo.dev/restored-from=<checkpoint> (select the copies with -l).
  - They lose the labels controllers select their own pods by (pod-template-hash,
    controller-revision-hash, Job and StatefulSet labels): no ReplicaSet adopts them, so they
    neither count as its replicas nor get deleted by it. They are bare pods: nothing re-creates
    them if they die or their node goes; delete them when done.
  - They lose what belonged to the old pod: node, status, uid, owner, the service account
    token volume (admission adds a fresh one), priority/overhead (recomputed), ephemeral
    containers, and what Cryo's webhook wrote into the old pod (it writes it again).
  - Volumes are the same objects: a ReadWriteOnce PersistentVolumeClaim lets copies run on
    one node only; a hostPort lets one copy per node.
  - The Checkpoint must be Succeeded and recorded with a pod template (taken by a node agent
    that records them); older Checkpoints restore single containers through the
    cryo.dev/restore-from annotation on a pod you write.

Exit codes: 1 when the Checkpoint cannot be restored or a pod cannot start (the message says
why), 3 when it does not exist, 4 when --timeout passed (the pods carry on). Interrupting
--wait loses nothing: the pods exist (kubectl get pods -l cryo.dev/restored-from=<checkpoint>).`,
  run: runRestore,
};

async function runRestore(ctx: CommandContext): Promise<number> {
  const { values } = ctx.parsed;
  const [checkpointName] = positionals('restore', ctx.parsed, ['checkpoint']);
  const name = stringValue(values, 'name');
  const copies = integerValue(values, 'copies', 1, 1, MAX_COPIES);
  const nodeName = stringValue(values, 'node');
  const wait = flag(values, 'wait');
  const timeoutSeconds = durationValue(values, 'timeout', '5m');
  const format = outputValue(values, ['json', 'yaml', 'name']);
  const kube = ctx.kube();
  const { namespace } = kube;

  let checkpoint: Checkpoint;
  try {
    checkpoint = await getObject<Checkpoint>(kube, CHECKPOINTS, namespace, checkpointName);
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `Checkpoint "${checkpointName}" in namespace ${namespace}`, listHint: `kubectl cryo get checkpoints -n ${namespace}` });
  }
  assertRestorable(checkpoint, namespace);
  if (nodeName !== undefined) await checkNode(kube, checkpoint, nodeName);

  const pods: V1Pod[] = [];
  for (let i = 1; i <= copies; i++) {
    const podName = name === undefined ? undefined : copies === 1 ? name : `${name}-${i}`;
    try {
      pods.push(podFromCheckpoint(checkpoint, { ...(podName === undefined ? {} : { name: podName }), ...(nodeName === undefined ? {} : { nodeName }) }));
    } catch (err) {
      if (err instanceof PodFromCheckpointError) throw new CliError(EXIT.FAILED, err.message);
      throw err;
    }
  }

  const created: V1Pod[] = [];
  for (const pod of pods) {
    try {
      created.push(await kube.core.createNamespacedPod({ namespace, body: pod }));
    } catch (err) {
      const mapped = fromApiError(err, { server: kube.server, what: `namespace ${namespace}` });
      const already = created.length === 0 ? '' : ` (created before it: ${created.map((p) => `pod/${p.metadata?.name}`).join(', ')}; they stay)`;
      throw new CliError(mapped.exitCode, `creating pod ${pod.metadata?.name ?? `${pod.metadata?.generateName}…`} from Checkpoint ${checkpointName}: ${mapped.message}${already}`);
    }
    if (!isStructured(format)) line(ctx.io.stdout, `pod/${created.at(-1)!.metadata?.name} created`);
  }
  if (!wait) {
    if (isStructured(format)) printStructured(ctx.io.stdout, format, created, copies === 1, (p) => `pod/${p.metadata?.name}`);
    return EXIT.OK;
  }

  const names = created.map((p) => p.metadata!.name!);
  const progress = ctx.io.stdout.isTTY && format === undefined ? new Progress(ctx.io.stdout) : undefined;
  const limit = deadline(ctx.signal, timeoutSeconds);
  let final: Map<string, V1Pod>;
  try {
    final = await waitForReady(kube, namespace, checkpointName, names, limit.signal, progress);
  } catch (err) {
    throw timeoutError(err, `pod(s) ${names.join(', ')} to be Ready`, `the pods carry on: kubectl get pods -n ${namespace} -l ${podLabels.RESTORED_FROM}=${podLabels.restoredFromLabelValue(checkpointName)}`);
  } finally {
    limit.dispose();
  }
  if (isStructured(format)) printStructured(ctx.io.stdout, format, names.map((n) => final.get(n)!), copies === 1, (p) => `pod/${p.metadata?.name}`);
  else for (const n of names) line(ctx.io.stdout, `pod/${n} Ready on node ${final.get(n)?.spec?.nodeName ?? '?'}`);
  return EXIT.OK;
}

/** Only a Succeeded Checkpoint restores; the message says what to do for each other phase. */
export function assertRestorable(checkpoint: Checkpoint, namespace: string): void {
  const name = checkpoint.metadata?.name ?? '';
  const status = checkpoint.status ?? {};
  if (status.phase === 'Succeeded') return;
  if (status.phase === 'Expired') throw new CliError(EXIT.FAILED, `Checkpoint ${name} is Expired: ${status.message ?? 'retention removed its data'}; take a new Checkpoint (kubectl cryo checkpoint <pod> --wait)`);
  if (status.phase === 'Failed') throw new CliError(EXIT.FAILED, `Checkpoint ${name} Failed: ${status.message ?? 'no message'}; there is nothing to restore: take a new Checkpoint`);
  throw new CliError(EXIT.FAILED, `Checkpoint ${name} is ${status.phase ?? 'Pending'}, not Succeeded yet; wait for it (kubectl cryo describe checkpoint -n ${namespace} ${name}) and restore then`);
}

/** The node exists, and can serve the checkpoint: a node-local directory checkpoint is only on its own node. */
async function checkNode(kube: Kube, checkpoint: Checkpoint, nodeName: string): Promise<void> {
  const status = checkpoint.status ?? {};
  if (status.storage?.type === 'directory' && status.storage.shared !== true && status.nodeName !== undefined && status.nodeName !== nodeName) {
    throw usageError(
      `--node ${nodeName}: Checkpoint ${checkpoint.metadata?.name} is in the directory store of node ${status.nodeName}, whose node agent alone serves it, so it restores only there: drop --node, or use --node ${status.nodeName}`,
    );
  }
  try {
    await kube.core.readNode({ name: nodeName });
  } catch (err) {
    const mapped = fromApiError(err, { server: kube.server, what: `node "${nodeName}"`, listHint: 'kubectl get nodes' });
    // Reading nodes is often not allowed to namespace users: then the scheduler tells.
    if (mapped.exitCode === EXIT.NOT_FOUND && !/forbidden|credentials/.test(mapped.message)) throw mapped;
  }
}

/** Watches the pods until every one is Ready; fails fast on one that cannot start. */
async function waitForReady(kube: Kube, namespace: string, checkpointName: string, names: readonly string[], signal: AbortSignal, progress: Progress | undefined): Promise<Map<string, V1Pod>> {
  const latest = new Map<string, V1Pod>();
  const lastState = new Map<string, string>();
  const labelSelector = `${podLabels.RESTORED_FROM}=${podLabels.restoredFromLabelValue(checkpointName)}`;
  return follow<V1Pod, Map<string, V1Pod>>({
    kube,
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
    labelSelector,
    list: async () => (await kube.core.listNamespacedPod({ namespace, labelSelector })),
    decide: (type, pod) => {
      const name = pod.metadata?.name ?? '';
      if (!names.includes(name)) return undefined;
      if (type === 'DELETED') throw new CliError(EXIT.FAILED, `pod ${name} was deleted before it was Ready`);
      latest.set(name, pod);
      const state = podState(pod);
      if (state !== lastState.get(name)) {
        lastState.set(name, state);
        progress?.line(`pod/${name} ${state}`);
      }
      const problem = podProblem(pod);
      if (problem !== undefined) throw new CliError(EXIT.FAILED, `pod ${name} cannot start: ${problem} (kubectl describe pod -n ${namespace} ${name})`);
      return names.every((n) => latest.has(n) && isPodReady(latest.get(n)!)) ? latest : undefined;
    },
    signal,
  });
}
