/**
 * Who restores from stored checkpoint data, so that retention never removes data in use. In the
 * entry's namespace (a pod restores only from a Checkpoint of its own namespace):
 *   - a pod that has not finished (phase other than Succeeded and Failed) whose annotation
 *     cryo.dev/restore-from names the entry's Checkpoint. Every restoring pod carries it: those
 *     users write, the copies `kubectl cryo restore` and Migrations create (whose label
 *     cryo.dev/restored-from is cut to 63 characters, so the annotation is what is matched), and
 *     a Migration's replacement (the webhook writes it). When the pod also records the uid it
 *     restored from (cryo.dev/restored-checkpoint-uid, written by the webhook), only data of that
 *     Checkpoint is its: a Checkpoint re-created under the same name is another one;
 *   - a workload whose pod template carries that annotation: a Deployment, StatefulSet,
 *     DaemonSet, ReplicaSet (a Deployment's old ones too: a rollback restores from them), a Job
 *     that has not finished, or a CronJob's jobTemplate. The next pod it creates restores from
 *     the Checkpoint of that name, so templates match by name.
 *
 * Read by listing, at retention time, only the namespaces whose data would go, rather than by a
 * watched cache (as the Checkpoint controller's own direct reads do for rare decisions): retention
 * runs after a checkpoint and every --retention-interval, and a few lists per run cost far less
 * than every node's agent holding every pod and workload of the cluster (its pod watch covers its
 * own node only, and a restoring pod may run on any node). Lists answer what is there now, so a
 * pod admitted a moment ago is seen. A list that fails keeps everything of its namespace: not
 * knowing is no reason to remove data.
 */
import { AppsV1Api, BatchV1Api, CoreV1Api, type KubeConfig, type V1PodTemplateSpec } from '@kubernetes/client-node';
import { annotations, describeApiError } from '@cryo/common';
import type { StoredEntry } from '../storage/checkpoint-store.ts';

/** Why an entry stays: what restores from it (`pod`, `workload`), or `unknown` when that could not be read. */
export interface InUse {
  cause: 'pod' | 'workload' | 'unknown';
  /** For people: "pod orders-restored restores from it". */
  why: string;
}

/** One pod or workload that restores from the Checkpoint its annotation names. */
interface Restorer {
  /** `pod orders-1`, `Deployment web`. */
  what: string;
  cause: 'pod' | 'workload';
  /** The uid of the Checkpoint a restored pod records; undefined for templates (they name the Checkpoint only). */
  checkpointUid?: string;
}

/** Pods that still run or may: the apiserver filters them (Succeeded and Failed pods never start again). */
const UNFINISHED_PODS = 'status.phase!=Succeeded,status.phase!=Failed';

export class CheckpointUsers {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly batch: BatchV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
  }

  /** Of `entries`, those in use, each with why; one round of lists per namespace among them. */
  async inUse(entries: readonly StoredEntry[]): Promise<Map<StoredEntry, InUse>> {
    const found = new Map<StoredEntry, InUse>();
    const namespaces = new Set(entries.map((entry) => entry.namespace));
    await Promise.all(
      [...namespaces].map(async (namespace) => {
        const ofNamespace = entries.filter((entry) => entry.namespace === namespace);
        let restorers: Map<string, Restorer[]>;
        try {
          restorers = await this.restorersIn(namespace);
        } catch (error) {
          const why = `whether a pod or workload of namespace ${namespace} restores from it could not be read (${describeApiError(error)}); it stays until that can be read (the node agent may list pods and workloads: manifests/node-agent-rbac.yaml)`;
          for (const entry of ofNamespace) found.set(entry, { cause: 'unknown', why });
          return;
        }
        for (const entry of ofNamespace) {
          const users = (restorers.get(entry.checkpointName) ?? []).filter(
            (user) => user.checkpointUid === undefined || entry.checkpointUid === '' || user.checkpointUid === entry.checkpointUid,
          );
          if (users.length > 0) found.set(entry, { cause: users[0].cause, why: describeUsers(users) });
        }
      }),
    );
    return found;
  }

  /** Checkpoint name → the pods and workloads of `namespace` that restore from it. */
  private async restorersIn(namespace: string): Promise<Map<string, Restorer[]>> {
    const [pods, deployments, statefulSets, daemonSets, replicaSets, jobs, cronJobs] = await Promise.all([
      this.core.listNamespacedPod({ namespace, fieldSelector: UNFINISHED_PODS }),
      this.apps.listNamespacedDeployment({ namespace }),
      this.apps.listNamespacedStatefulSet({ namespace }),
      this.apps.listNamespacedDaemonSet({ namespace }),
      this.apps.listNamespacedReplicaSet({ namespace }),
      this.batch.listNamespacedJob({ namespace }),
      this.batch.listNamespacedCronJob({ namespace }),
    ]);
    const restorers = new Map<string, Restorer[]>();
    const add = (checkpointName: string | undefined, restorer: Restorer) => {
      if (checkpointName === undefined || checkpointName === '') return;
      restorers.set(checkpointName, [...(restorers.get(checkpointName) ?? []), restorer]);
    };
    for (const pod of pods.items) {
      const podAnnotations = pod.metadata?.annotations;
      const uid = podAnnotations?.[annotations.RESTORED_CHECKPOINT_UID];
      add(podAnnotations?.[annotations.RESTORE_FROM], { what: `pod ${pod.metadata?.name}`, cause: 'pod', ...(uid !== undefined && uid !== '' ? { checkpointUid: uid } : {}) });
    }
    const finished = (conditions: ReadonlyArray<{ type: string; status: string }> = []) => conditions.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    const templates: Array<{ kind: string; name?: string; template?: V1PodTemplateSpec }> = [
      ...deployments.items.map((d) => ({ kind: 'Deployment', name: d.metadata?.name, template: d.spec?.template })),
      ...statefulSets.items.map((s) => ({ kind: 'StatefulSet', name: s.metadata?.name, template: s.spec?.template })),
      ...daemonSets.items.map((d) => ({ kind: 'DaemonSet', name: d.metadata?.name, template: d.spec?.template })),
      ...replicaSets.items.map((r) => ({ kind: 'ReplicaSet', name: r.metadata?.name, template: r.spec?.template })),
      // A finished Job creates no more pods.
      ...jobs.items.filter((j) => !finished(j.status?.conditions)).map((j) => ({ kind: 'Job', name: j.metadata?.name, template: j.spec?.template })),
      ...cronJobs.items.map((c) => ({ kind: 'CronJob', name: c.metadata?.name, template: c.spec?.jobTemplate?.spec?.template })),
    ];
    for (const { kind, name, template } of templates) add(template?.metadata?.annotations?.[annotations.RESTORE_FROM], { what: `${kind} ${name}`, cause: 'workload' });
    return restorers;
  }
}

/** "pod a restores from it", "pod a and Deployment b restore from it", "pod a, pod b and 3 more restore from it". */
function describeUsers(users: readonly Restorer[]): string {
  const named = users.slice(0, 2).map((user) => user.what);
  const list = users.length <= 2 ? named.join(' and ') : `${named.join(', ')} and ${users.length - 2} more`;
  return `${list} ${users.length === 1 ? 'restores' : 'restore'} from it`;
}
