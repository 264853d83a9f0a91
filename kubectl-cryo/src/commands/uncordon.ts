/**
 * `kubectl cryo uncordon <node>`: make the node schedulable again. The Migrations that restart in
 * place on it (drain --reboot) proceed by themselves once it is Ready and schedulable: the
 * controller restores their pods there. --restore lists them, and --wait follows them.
 */
import type { V1Node } from '@kubernetes/client-node';
import { isMigrationFinished, type Migration } from '@cryo/common';
import { durationValue, flag, positionals } from '../args.ts';
import { deadline, Progress, timeoutError, type Command, type CommandContext } from '../command.ts';
import { CliError, EXIT, fromApiError } from '../errors.ts';
import { follow } from '../follow.ts';
import { line } from '../io.ts';
import type { Kube } from '../kube.ts';
import { qualifiedName } from '../output.ts';
import { listObjects, MIGRATIONS } from '../resources.ts';
import { setUnschedulable } from './drain.ts';

export const uncordonCommand: Command = {
  name: 'uncordon',
  summary: 'Make a node schedulable again; --restore shows (and --wait follows) the pods restored onto it',
  options: {
    restore: { type: 'boolean' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  },
  help: `Make a node schedulable again (undoes kubectl cryo drain's cordon). Migrations that restart
in place on it (kubectl cryo drain --reboot) now proceed: the Cryo controller restores each
pod on the node once it is Ready and schedulable.

Usage:
  kubectl cryo uncordon <node> [flags]

Examples:
  # After the reboot: uncordon, and follow the pods coming back with their state
  kubectl cryo uncordon worker-2 --restore --wait

  # Just uncordon
  kubectl cryo uncordon worker-2

Flags:
  --restore              list the Migrations that restart in place on this node (all namespaces)
  --wait                 follow them until each Succeeded or Failed (implies --restore)
  --timeout <duration>   how long --wait waits (default 10m; 0: no limit)

Exit code 1 when a followed Migration Failed, 4 when --timeout passed. Interrupting --wait
loses nothing: the controller carries on (kubectl cryo get migrations -A).`,
  run: runUncordon,
};

async function runUncordon(ctx: CommandContext): Promise<number> {
  const { values } = ctx.parsed;
  const [nodeName] = positionals('uncordon', ctx.parsed, ['node']);
  const restore = flag(values, 'restore') || flag(values, 'wait');
  const wait = flag(values, 'wait');
  const timeoutSeconds = durationValue(values, 'timeout', '10m');
  const kube = ctx.kube();
  const { stdout } = ctx.io;

  let node: V1Node;
  try {
    node = await kube.core.readNode({ name: nodeName });
  } catch (err) {
    throw fromApiError(err, { server: kube.server, what: `node "${nodeName}"`, listHint: 'kubectl get nodes' });
  }
  if (node.spec?.unschedulable === true) {
    await setUnschedulable(kube, nodeName, false);
    line(stdout, `node/${nodeName} uncordoned`);
  } else {
    line(stdout, `node/${nodeName} already uncordoned`);
  }

  const { migrations, namespace, scope } = await inPlaceMigrations(kube, nodeName);
  if (!restore) {
    if (migrations.length > 0) line(stdout, `${migrations.length} Migration(s) restart in place on this node and proceed now; follow them: kubectl cryo uncordon ${nodeName} --restore --wait`);
    return EXIT.OK;
  }
  if (migrations.length === 0) {
    line(stdout, `no Migration restarts in place on node ${nodeName} (${scope})`);
    return EXIT.OK;
  }
  const ready = (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  for (const m of migrations) line(stdout, `${qualifiedName(MIGRATIONS, m)} ${m.metadata?.namespace}: pod ${m.spec.podName} ${m.status?.phase ?? 'Pending'}`);
  line(stdout, ready ? `the controller restores these pods on node ${nodeName} now` : `node ${nodeName} is not Ready yet: these pods are restored on it once it is`);
  if (!wait) return EXIT.OK;

  const progress = stdout.isTTY ? new Progress(stdout) : undefined;
  const keys = new Set(migrations.map((m) => `${m.metadata?.namespace}/${m.metadata?.name}`));
  const latest = new Map<string, Migration>();
  const lastPhase = new Map<string, string>();
  const limit = deadline(ctx.signal, timeoutSeconds);
  let final: Map<string, Migration>;
  try {
    final = await follow<Migration, Map<string, Migration>>({
      kube,
      path: MIGRATIONS.path(namespace),
      list: () => listObjects<Migration>(kube, MIGRATIONS, namespace),
      decide: (type, m) => {
        const key = `${m.metadata?.namespace}/${m.metadata?.name}`;
        if (!keys.has(key)) return undefined;
        if (type === 'DELETED') throw new CliError(EXIT.FAILED, `Migration ${key} was deleted while waiting for it`);
        latest.set(key, m);
        const phase = m.status?.phase ?? 'Pending';
        if (lastPhase.get(key) !== phase) {
          lastPhase.set(key, phase);
          progress?.line(`${key} ${phase}${m.status?.message ? `: ${m.status.message}` : ''}`);
        }
        return [...keys].every((k) => isMigrationFinished(latest.get(k)?.status?.phase)) ? latest : undefined;
      },
      signal: limit.signal,
    });
  } catch (err) {
    throw timeoutError(err, `the Migrations restoring onto node ${nodeName}`, 'they carry on: kubectl cryo get migrations -A');
  } finally {
    limit.dispose();
  }
  const failed: string[] = [];
  for (const [key, m] of final) {
    const status = m.status ?? {};
    line(stdout, `${qualifiedName(MIGRATIONS, m)} ${m.metadata?.namespace}: ${status.phase}${status.targetPodName ? `: pod ${status.targetPodName} on node ${status.targetNodeName ?? nodeName}` : ''}${status.phase === 'Failed' && status.message ? `: ${status.message}` : ''}`);
    if (status.phase === 'Failed') failed.push(key);
  }
  if (failed.length > 0) throw new CliError(EXIT.FAILED, `${failed.length} Migration(s) Failed: ${failed.join(', ')} (kubectl cryo describe migration -n <namespace> <name>)`);
  return EXIT.OK;
}

/** Unfinished restart-in-place Migrations from this node: in every namespace, or in -n's when listing all is not allowed. */
async function inPlaceMigrations(kube: Kube, nodeName: string): Promise<{ migrations: Migration[]; namespace: string | undefined; scope: string }> {
  const pick = (items: readonly Migration[]) => items.filter((m) => m.spec?.restartInPlace === true && m.status?.sourceNodeName === nodeName && !isMigrationFinished(m.status?.phase));
  try {
    return { migrations: pick((await listObjects<Migration>(kube, MIGRATIONS, undefined)).items), namespace: undefined, scope: 'all namespaces' };
  } catch (err) {
    const mapped = fromApiError(err, { server: kube.server });
    if (!/forbidden/.test(mapped.message)) throw mapped;
  }
  try {
    return { migrations: pick((await listObjects<Migration>(kube, MIGRATIONS, kube.namespace)).items), namespace: kube.namespace, scope: `namespace ${kube.namespace} only: you may not list Migrations in all namespaces` };
  } catch (err) {
    throw fromApiError(err, { server: kube.server });
  }
}
