/**
 * `kubectl cryo drain <node>`: kubectl drain, except that pods opted in to migration are moved
 * with their state (a Migration each) instead of evicted. Cordons first; then every pod on the
 * node is migrated, evicted (policy/v1 Eviction, PodDisruptionBudgets respected: a 429 is
 * retried, as kubectl drain does) or left (DaemonSet and mirror pods, pods already terminating).
 * Pods whose eviction would lose them for good (no controller, emptyDir data) stop the drain
 * before anything is evicted, unless --force / --delete-emptydir-data say so, as in kubectl.
 */
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { annotations, apiStatusCode, CHECKPOINT_API_VERSION, isMigrationFinished, MIGRATION_KIND, type Migration, type MigrationPhase } from '@cryo/common';
import { durationValue, flag, positionals, stringValue } from '../args.ts';
import { deadline, Progress, timeoutError, type Command, type CommandContext } from '../command.ts';
import { apiMessage, CliError, EXIT, fromApiError } from '../errors.ts';
import { follow, sleep } from '../follow.ts';
import { line } from '../io.ts';
import type { Kube } from '../kube.ts';
import { qualifiedName } from '../output.ts';
import { createMigration, listObjects, MIGRATIONS } from '../resources.ts';
import { followMigration } from './migrate.ts';

/** How long kubectl drain waits before retrying an eviction a disruption budget refused. */
export const EVICTION_RETRY_MS = 5000;

const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

/** Phases in which a Migration has stopped its source pod: the node may go down. */
const SOURCE_STOPPED: readonly MigrationPhase[] = ['WaitingForNode', 'Restoring', 'Succeeded', 'Failed'];

export type DrainAction = { kind: 'migrate'; pod: V1Pod } | { kind: 'evict'; pod: V1Pod } | { kind: 'skip'; pod: V1Pod; why: string };

export interface DrainPlan {
  actions: DrainAction[];
  /** Pods an eviction would lose for good without --force / --delete-emptydir-data: nothing happens while any. */
  problems: string[];
}

export const podKey = (pod: V1Pod): string => `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;

export function isOptedIn(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[annotations.MIGRATE] === annotations.MIGRATE_ENABLED;
}

/** What drain does with each pod on the node. `selected`: pods the --selector matched (keys from podKey). */
export function planDrain(pods: readonly V1Pod[], selected: ReadonlySet<string>, options: { force: boolean; deleteEmptyDirData: boolean }): DrainPlan {
  const actions: DrainAction[] = [];
  const problems: string[] = [];
  for (const pod of pods) {
    const controller = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
    const phase = pod.status?.phase;
    if (pod.metadata?.deletionTimestamp !== undefined) actions.push({ kind: 'skip', pod, why: 'already terminating' });
    else if (pod.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined) actions.push({ kind: 'skip', pod, why: 'a static pod (its mirror cannot be evicted; the kubelet runs it)' });
    else if (controller?.kind === 'DaemonSet') actions.push({ kind: 'skip', pod, why: `managed by DaemonSet ${controller.name} (left running, as kubectl drain --ignore-daemonsets does)` });
    else if (phase === 'Succeeded' || phase === 'Failed') actions.push({ kind: 'evict', pod });
    else if (isOptedIn(pod) || selected.has(podKey(pod))) actions.push({ kind: 'migrate', pod });
    else {
      if (controller === undefined && !options.force) {
        problems.push(`${podKey(pod)}: no controller (ReplicaSet, StatefulSet, Job...) would re-create it, so evicting it deletes it for good; opt it in to migration (annotation ${annotations.MIGRATE}: ${annotations.MIGRATE_ENABLED}, or --selector), or pass --force`);
      }
      const emptyDirs = (pod.spec?.volumes ?? []).filter((v) => v.emptyDir !== undefined).map((v) => v.name);
      if (emptyDirs.length > 0 && !options.deleteEmptyDirData) {
        problems.push(`${podKey(pod)}: its emptyDir volume(s) ${emptyDirs.join(', ')} are deleted with it; pass --delete-emptydir-data`);
      }
      actions.push({ kind: 'evict', pod });
    }
  }
  return { actions, problems };
}

export const drainCommand: Command = {
  name: 'drain',
  summary: 'Cordon a node, migrate the pods opted in to migration, evict the rest (like kubectl drain)',
  options: {
    selector: { type: 'string', short: 'l' },
    reboot: { type: 'boolean' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
    force: { type: 'boolean' },
    'delete-emptydir-data': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  },
  help: `Prepare a node for maintenance: cordon it (no new pods), then for each pod on it:
  - pods opted in to migration (annotation ${annotations.MIGRATE}: ${annotations.MIGRATE_ENABLED}, or matching
    --selector) get a Migration: checkpointed, stopped, and restored on another node, or with
    --reboot back on this one once it is Ready and uncordoned;
  - the others are evicted through the Eviction API, so PodDisruptionBudgets hold (a refused
    eviction is retried every 5 s, as kubectl drain does, until --timeout);
  - DaemonSet pods, static (mirror) pods and pods already terminating are left alone.
Before evicting anything it refuses, as kubectl drain does, pods that an eviction loses for
good: without a controller (--force evicts them) or with emptyDir data (--delete-emptydir-data).

Usage:
  kubectl cryo drain <node> [flags]

Examples:
  # Move everything off worker-2: migrate opted-in pods, evict the rest, wait until done
  kubectl cryo drain worker-2 --wait

  # Reboot worker-2 and bring its opted-in pods back onto it with their state
  kubectl cryo drain worker-2 --reboot --wait      # returns when the node may go down
  sudo reboot                                      # (on worker-2)
  kubectl cryo uncordon worker-2 --restore --wait  # once it is back

  # Migrate the pods labelled app=cache too, even without the annotation; see first what happens
  kubectl cryo drain worker-2 --selector app=cache --dry-run

Flags:
  -l, --selector <labels>    pods matching these labels are migrated too (app=cache,tier!=web)
  --reboot                   Migrations restart in place: they wait for this node to come back
                             (Ready and uncordoned) and restore here (spec.restartInPlace)
  --wait                     wait until the evicted pods are gone and every Migration has
                             stopped its pod (--reboot) or finished (otherwise)
  --timeout <duration>       how long evictions are retried and --wait waits (default 0: no limit)
  --force                    evict pods no controller manages (they are deleted for good)
  --delete-emptydir-data     evict pods with emptyDir volumes (their data is deleted)
  --dry-run                  print what would happen; change nothing (not even the cordon)

The node stays cordoned whatever happens: kubectl cryo uncordon <node> undoes it.
Exit codes: 1 when a pod cannot be evicted or a Migration Failed, 3 when the node does not
exist or you may not list pods cluster-wide, 4 when --timeout passed. Interrupting it loses
nothing: Migrations and evictions already requested carry on in the cluster; run it again to
finish (it reuses the Migrations already running).`,
  run: runDrain,
};

async function runDrain(ctx: CommandContext): Promise<number> {
  const { values } = ctx.parsed;
  const [nodeName] = positionals('drain', ctx.parsed, ['node']);
  const selector = stringValue(values, 'selector');
  const reboot = flag(values, 'reboot');
  const wait = flag(values, 'wait');
  const dryRun = flag(values, 'dry-run');
  const timeoutSeconds = durationValue(values, 'timeout', '0');
  const options = { force: flag(values, 'force'), deleteEmptyDirData: flag(values, 'delete-emptydir-data') };
  const kube = ctx.kube();
  const { stdout, stderr } = ctx.io;

  let unschedulable: boolean;
  try {
    unschedulable = (await kube.core.readNode({ name: nodeName })).spec?.unschedulable === true;
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `node "${nodeName}"`, listHint: 'kubectl get nodes' });
  }
  if (!dryRun) {
    if (unschedulable) line(stdout, `node/${nodeName} already cordoned`);
    else {
      await setUnschedulable(kube, nodeName, true);
      line(stdout, `node/${nodeName} cordoned`);
    }
  }

  const pods = await podsOn(kube, nodeName, undefined);
  const selected = new Set(selector === undefined ? [] : (await podsOn(kube, nodeName, selector)).map(podKey));
  const plan = planDrain(pods, selected, options);
  for (const action of plan.actions) if (action.kind === 'skip') line(stderr, `Warning: leaving pod ${podKey(action.pod)}: ${action.why}`);
  if (dryRun) {
    for (const action of plan.actions) {
      if (action.kind === 'migrate') line(stdout, `would migrate pod ${podKey(action.pod)}${reboot ? ' (restart in place)' : ''}`);
      if (action.kind === 'evict') line(stdout, `would evict pod ${podKey(action.pod)}`);
    }
    for (const problem of plan.problems) line(stderr, `error: ${problem}`);
    line(stdout, `node/${nodeName} ${unschedulable ? 'is' : 'would be'} cordoned (dry run: nothing changed)`);
    return plan.problems.length === 0 ? EXIT.OK : EXIT.FAILED;
  }
  if (plan.problems.length > 0) {
    for (const problem of plan.problems) line(stderr, `error: ${problem}`);
    throw new CliError(EXIT.FAILED, `cannot drain node ${nodeName}: ${plan.problems.length} pod(s) above would be lost; nothing was evicted or migrated, the node stays cordoned (kubectl cryo uncordon ${nodeName} undoes it)`);
  }

  const limit = deadline(ctx.signal, timeoutSeconds);
  const progress = stdout.isTTY ? new Progress(stdout) : undefined;
  try {
    const migrations = await startMigrations(ctx, kube, nodeName, plan.actions.filter((a) => a.kind === 'migrate').map((a) => a.pod), reboot);
    const evicted = plan.actions.filter((a) => a.kind === 'evict').map((a) => a.pod);
    const failures = (await Promise.all(evicted.map((pod) => evict(ctx, kube, pod, limit.signal)))).filter((f) => f !== undefined);
    if (failures.length > 0) {
      for (const failure of failures) line(stderr, `error: ${failure}`);
      throw new CliError(EXIT.FAILED, `${failures.length} pod(s) could not be evicted from node ${nodeName}; the node stays cordoned (kubectl cryo uncordon ${nodeName} undoes it)`);
    }
    if (!wait) {
      line(stdout, `node/${nodeName} drained: evictions done${migrations.length > 0 ? `, ${migrations.length} Migration(s) running (kubectl cryo get migrations -A)` : ''}`);
      if (reboot && migrations.length > 0) line(stdout, `before rebooting, wait until each Migration is WaitingForNode (kubectl cryo drain ${nodeName} --reboot --wait waits for it)`);
      return EXIT.OK;
    }
    await waitGone(kube, nodeName, evicted, limit.signal, progress);
    const until = reboot ? (m: Migration) => SOURCE_STOPPED.includes(m.status?.phase as MigrationPhase) : (m: Migration) => isMigrationFinished(m.status?.phase);
    const finished = await Promise.all(
      migrations.map((m) => followMigration({ ...ctx, signal: limit.signal }, kube, m.metadata!.namespace!, m.metadata!.name!, 0, progress, until)),
    );
    const failed = finished.filter((m) => m.status?.phase === 'Failed');
    for (const m of finished) line(stdout, `${qualifiedName(MIGRATIONS, m)} ${m.metadata?.namespace}: pod ${m.spec.podName} ${m.status?.phase}${m.status?.message ? `: ${m.status.message}` : ''}`);
    if (failed.length > 0) {
      throw new CliError(EXIT.FAILED, `${failed.length} Migration(s) Failed: ${failed.map((m) => `${m.metadata?.namespace}/${m.metadata?.name}`).join(', ')} (kubectl cryo describe migration -n <namespace> <name>); the node stays cordoned`);
    }
    line(stdout, `node/${nodeName} drained`);
    if (reboot) line(stdout, `node/${nodeName} may be rebooted now; once it is back: kubectl cryo uncordon ${nodeName} --restore --wait`);
    return EXIT.OK;
  } catch (err) {
    throw timeoutError(err, `node ${nodeName} to drain`, `the node stays cordoned; evictions and Migrations already requested carry on (kubectl cryo get migrations -A); run kubectl cryo drain ${nodeName} again to finish`);
  } finally {
    limit.dispose();
  }
}

export async function setUnschedulable(kube: Kube, nodeName: string, unschedulable: boolean): Promise<void> {
  try {
    await kube.core.patchNode({ name: nodeName, body: { spec: { unschedulable } } }, mergePatch);
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `node "${nodeName}"`, listHint: 'kubectl get nodes' });
  }
}

// client-node sends a patch as JSON Patch unless told otherwise.
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function podsOn(kube: Kube, nodeName: string, labelSelector: string | undefined): Promise<V1Pod[]> {
  try {
    return (await kube.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}`, ...(labelSelector === undefined ? {} : { labelSelector }) })).items;
  } catch (err) {
    const mapped = fromApiError(err, { server: kube.server });
    if (apiStatusCode(err) === 400) throw new CliError(EXIT.USAGE, `--selector ${labelSelector}: ${apiMessage(err)}`);
    throw mapped;
  }
}

/** A Migration per pod, or the one already running for it (a drain run again after an interruption). */
async function startMigrations(ctx: CommandContext, kube: Kube, nodeName: string, pods: readonly V1Pod[], reboot: boolean): Promise<Migration[]> {
  const byNamespace = new Map<string, Migration[]>();
  const migrations: Migration[] = [];
  for (const pod of pods) {
    const namespace = pod.metadata!.namespace!;
    const podName = pod.metadata!.name!;
    let existing = byNamespace.get(namespace);
    if (existing === undefined) {
      try {
        existing = (await listObjects<Migration>(kube, MIGRATIONS, namespace)).items;
      } catch (err) {
        throw fromApiError(err, { server: kube.server });
      }
      byNamespace.set(namespace, existing);
    }
    const running = existing.find((m) => m.spec?.podName === podName && !isMigrationFinished(m.status?.phase));
    if (running !== undefined) {
      line(ctx.io.stdout, `${qualifiedName(MIGRATIONS, running)} already migrating pod ${namespace}/${podName} (${running.status?.phase ?? 'Pending'})`);
      migrations.push(running);
      continue;
    }
    const body: Migration = {
      apiVersion: CHECKPOINT_API_VERSION,
      kind: MIGRATION_KIND,
      metadata: { namespace, generateName: `${podName}-` },
      spec: { podName, ...(reboot ? { restartInPlace: true } : {}), reason: `kubectl cryo drain ${nodeName}${reboot ? ' --reboot' : ''}` },
    };
    try {
      const created = await createMigration(kube, body);
      line(ctx.io.stdout, `${qualifiedName(MIGRATIONS, created)} created: migrating pod ${namespace}/${podName}${reboot ? ' (restart in place)' : ''}`);
      migrations.push(created);
    } catch (err) {
      throw fromApiError(err, { server: kube.server, what: `namespace ${namespace}` });
    }
  }
  return migrations;
}

/** Evicts one pod, retrying while a disruption budget refuses; resolves an error text, or undefined once evicted (or gone). */
async function evict(ctx: CommandContext, kube: Kube, pod: V1Pod, signal: AbortSignal): Promise<string | undefined> {
  const namespace = pod.metadata!.namespace!;
  const name = pod.metadata!.name!;
  const body = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } };
  line(ctx.io.stdout, `evicting pod ${namespace}/${name}`);
  for (;;) {
    signal.throwIfAborted();
    try {
      await kube.core.createNamespacedPodEviction({ namespace, name, body });
      line(ctx.io.stdout, `pod/${name} evicted (${namespace})`);
      return undefined;
    } catch (err) {
      const code = apiStatusCode(err);
      if (code === 404) return undefined;
      if (code !== 429) return `evicting pod ${namespace}/${name}: ${fromApiError(err, { server: kube.server }).message}`;
      line(ctx.io.stderr, `error when evicting pods/"${name}" -n "${namespace}" (will retry after ${ctx.tuning?.evictionRetryMs ?? EVICTION_RETRY_MS} ms): ${apiMessage(err)}`);
      await sleep(ctx.tuning?.evictionRetryMs ?? EVICTION_RETRY_MS, signal);
    }
  }
}

/** Waits until none of the evicted pods is on the node any more (by uid: a StatefulSet's replacement has the same name). */
async function waitGone(kube: Kube, nodeName: string, evicted: readonly V1Pod[], signal: AbortSignal, progress: Progress | undefined): Promise<void> {
  const remaining = new Set(evicted.map((p) => p.metadata!.uid!));
  if (remaining.size === 0) return;
  const fieldSelector = `spec.nodeName=${nodeName}`;
  await follow<V1Pod, true>({
    kube,
    path: '/api/v1/pods',
    fieldSelector,
    list: async () => (await kube.core.listPodForAllNamespaces({ fieldSelector })),
    decide: (type, pod) => {
      if (type === 'DELETED' && remaining.delete(pod.metadata?.uid ?? '')) progress?.line(`pod ${podKey(pod)} gone`);
      return remaining.size === 0 ? true : undefined;
    },
    listed: (items) => {
      const present = new Set(items.map((p) => p.metadata?.uid));
      for (const uid of [...remaining]) if (!present.has(uid)) remaining.delete(uid);
      return remaining.size === 0 ? true : undefined;
    },
    signal,
  });
}
