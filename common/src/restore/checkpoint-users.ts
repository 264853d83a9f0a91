/**
 * Who restores from a Checkpoint, so that nothing removes data in use: the node agent's retention
 * and the controller's CheckpointSchedule pruning both ask. In the Checkpoint's namespace (a pod
 * restores only from a Checkpoint of its own namespace):
 *   - a pod that has not finished (phase other than Succeeded and Failed) whose annotation
 *     cryo.dev/restore-from names the Checkpoint. Every restoring pod carries it: those users
 *     write, the copies `kubectl cryo restore` and Migrations create (whose label
 *     cryo.dev/restored-from is cut to 63 characters, so the annotation is what is matched), and
 *     a Migration's replacement (the webhook writes it). When the pod also records the uid it
 *     restored from (cryo.dev/restored-checkpoint-uid, written by the webhook), only the
 *     Checkpoint of that uid is its: a Checkpoint re-created under the same name is another one;
 *   - a workload whose pod template carries that annotation: a Deployment, StatefulSet,
 *     DaemonSet, ReplicaSet (a Deployment's old ones too: a rollback restores from them), a Job
 *     that has not finished, or a CronJob's jobTemplate. The next pod it creates restores from
 *     the Checkpoint of that name, so templates match by name.
 *
 * Read by listing, when something would be removed, only the namespaces concerned, rather than by
 * a watched cache: removals are rare, and a few lists each time cost far less than every node's
 * agent (or the controller) holding every pod and workload of the cluster. Lists answer what is
 * there now, so a pod admitted a moment ago is seen. A list that fails counts every Checkpoint of
 * its namespace as in use (cause `unknown`): not knowing is no reason to remove data.
 */
import { AppsV1Api, BatchV1Api, CoreV1Api, type KubeConfig, type V1PodTemplateSpec } from '@kubernetes/client-node';
import * as annotations from '../annotations.ts';
import type { CheckpointIdentity } from '../api/checkpoint.ts';
import { describeApiError } from '../kube/api-errors.ts';

/** Why a Checkpoint is in use: what restores from it (`pod`, `workload`), or `unknown` when that could not be read. */
export interface CheckpointUse {
  cause: 'pod' | 'workload' | 'unknown';
  /** For people: "pod orders-restored restores from it". */
  why: string;
}

export interface CheckpointUsersOptions {
  /** Who lists, for the message when a list fails: `the node agent`. */
  reader: string;
  /** The manifest whose RBAC lets it list pods and workloads: `manifests/node-agent-rbac.yaml`. */
  rbacManifest: string;
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
  private readonly options: CheckpointUsersOptions;

  constructor(kubeConfig: KubeConfig, options: CheckpointUsersOptions) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.apps = kubeConfig.makeApiClient(AppsV1Api);
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.options = options;
  }

  /**
   * Of `checkpoints`, those in use, each with why; one round of lists per namespace among them. A
   * uid of '' (not known) matches every pod restoring from that name.
   */
  async inUse<C extends CheckpointIdentity>(checkpoints: readonly C[]): Promise<Map<C, CheckpointUse>> {
    const found = new Map<C, CheckpointUse>();
    const namespaces = new Set(checkpoints.map((checkpoint) => checkpoint.namespace));
    await Promise.all(
      [...namespaces].map(async (namespace) => {
        const ofNamespace = checkpoints.filter((checkpoint) => checkpoint.namespace === namespace);
        let restorers: Map<string, Restorer[]>;
        try {
          restorers = await this.restorersIn(namespace);
        } catch (error) {
          const { reader, rbacManifest } = this.options;
          const why = `whether a pod or workload of namespace ${namespace} restores from it could not be read (${describeApiError(error)}); it stays until that can be read (${reader} may list pods and workloads: ${rbacManifest})`;
          for (const checkpoint of ofNamespace) found.set(checkpoint, { cause: 'unknown', why });
          return;
        }
        for (const checkpoint of ofNamespace) {
          const users = (restorers.get(checkpoint.name) ?? []).filter(
            (user) => user.checkpointUid === undefined || checkpoint.uid === '' || user.checkpointUid === checkpoint.uid,
          );
          if (users.length > 0) found.set(checkpoint, { cause: users[0].cause, why: describeUsers(users) });
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
