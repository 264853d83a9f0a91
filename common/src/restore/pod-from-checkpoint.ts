/**
 * Whole-pod restore: the pod to create from a Checkpoint's status.podTemplate (the pod as it ran),
 * annotated `cryo.dev/restore-from: <checkpoint>` so that the webhook points each checkpointed
 * container at its checkpoint image and keeps the pod on nodes that can restore it. `kubectl
 * cryo restore` and the Migration controller both create pods with this one function.
 *
 * What belongs to the old pod, or is re-added at admission, is left out:
 * - `spec.nodeName` (the scheduler places the new pod; `nodeName` in the options pins it through
 *   a required node affinity instead), `spec.ephemeralContainers` (refused on create),
 *   `spec.priority`, `spec.preemptionPolicy` and `spec.overhead` (computed at admission from the
 *   PriorityClass and RuntimeClass, and refused when they disagree with what is there now);
 * - the service account token volume `kube-api-access-*` and its mounts: the ServiceAccount
 *   admission plugin adds a fresh one;
 * - what Cryo's webhook wrote into the old pod: its annotations (original-images,
 *   restored-checkpoint-uid, restored-containers, hooks-status), the hook socket volume, mounts
 *   and env (put back by the webhook, as `cryo.dev/hooks: enabled` stays), its node requirements
 *   (cryo.dev/restore-runtime, and the pin to the node that held a node-local checkpoint), and the
 *   checkpoint images in place of the containers' own: the original images go back, since the
 *   webhook matches containers by name and records what it replaces;
 * - the labels controllers use to tell their own pods apart (pod-template-hash,
 *   controller-revision-hash, Job and StatefulSet labels), so no ReplicaSet, DaemonSet or Job
 *   adopts a restored pod; the app's own labels stay, so Services route to it;
 * - static-pod annotations (kubernetes.io/config.*) and kubectl's last-applied-configuration.
 * The old pod's uid, ownerReferences, resourceVersion, creationTimestamp and status are never in
 * a template: only its labels, annotations and spec are read.
 */
import type { V1Container, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import * as annotations from '../annotations.ts';
import type { Checkpoint } from '../api/checkpoint.ts';
import { cloneJson } from '../clone-json.ts';
import { CONTAINER_NAME_ENV, HOOK_SOCKET_ENV, HOOK_VOLUME_NAME, POD_UID_ENV } from '../hook-socket.ts';
import * as nodeLabels from '../node-labels.ts';
import * as podLabels from '../pod-labels.ts';

export interface PodFromCheckpointOptions {
  /** The new pod's name. */
  name?: string;
  /** Without a name: the apiserver generates one from this prefix (default `<checkpointed pod>-restored-`). */
  generateName?: string;
  /**
   * Run on this node: a required node affinity on the node's name (matchFields metadata.name, as
   * the DaemonSet controller pins pods), ANDed into every required term the pod has. The
   * scheduler still places the pod (resources, taints); spec.nodeName would bypass it.
   */
  nodeName?: string;
  /** Labels added last (they win over the template's). */
  extraLabels?: Record<string, string>;
}

/** Why a pod cannot be made from a Checkpoint (no template); the message says what to do instead. */
export class PodFromCheckpointError extends Error {
  override name = 'PodFromCheckpointError';
}

/** Annotations the webhook wrote into the old pod; it writes them again for the new one. */
const WEBHOOK_ANNOTATIONS = [annotations.ORIGINAL_IMAGES, annotations.RESTORED_CHECKPOINT_UID, annotations.RESTORED_CONTAINERS, annotations.HOOKS_STATUS];

/** Annotations of the old pod's origin that must not carry over. */
const LEFT_OUT_ANNOTATIONS = new Set([
  ...WEBHOOK_ANNOTATIONS,
  'kubectl.kubernetes.io/last-applied-configuration',
  // A static pod's mirror: a pod created through the API with these would claim to be one.
  'kubernetes.io/config.mirror',
  'kubernetes.io/config.hash',
  'kubernetes.io/config.seen',
  'kubernetes.io/config.source',
]);

/**
 * Labels controllers set on the pods they create to select exactly those (the rest of the
 * selector is the app's labels). Without them a restored pod matches no ReplicaSet of a
 * Deployment, DaemonSet or Job, so none adopts it (and deletes it as one replica too many).
 */
export const CONTROLLER_POD_LABELS: readonly string[] = [
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'controller-uid',
  'job-name',
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-name',
  'batch.kubernetes.io/job-completion-index',
];

const SERVICE_ACCOUNT_VOLUME_PREFIX = 'kube-api-access-';
const HOOK_ENV = new Set([POD_UID_ENV, HOOK_SOCKET_ENV, CONTAINER_NAME_ENV]);

/** The pod to create to restore the whole of `checkpoint`'s pod; throws PodFromCheckpointError without a template. */
export function podFromCheckpoint(checkpoint: Checkpoint, options: PodFromCheckpointOptions = {}): V1Pod {
  const checkpointName = checkpoint.metadata?.name ?? '';
  const template = checkpoint.status?.podTemplate;
  if (template?.spec === undefined) {
    throw new PodFromCheckpointError(
      `Checkpoint "${checkpointName}" has no pod template (status.podTemplate): it was ${checkpoint.status?.phase === 'Succeeded' || checkpoint.status?.phase === 'Expired' ? 'taken before Cryo recorded pod templates' : `not taken yet (phase ${checkpoint.status?.phase ?? 'none'})`}; ` +
        `restore single containers with ${annotations.RESTORE_FROM}: ${checkpointName} on a pod you write yourself, or take a new Checkpoint`,
    );
  }
  const oldAnnotations = template.metadata?.annotations ?? {};
  const spec = cloneJson(template.spec);

  const podAnnotations: Record<string, string> = {};
  for (const [key, value] of Object.entries(oldAnnotations)) if (!LEFT_OUT_ANNOTATIONS.has(key)) podAnnotations[key] = value;
  podAnnotations[annotations.RESTORE_FROM] = checkpointName;

  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(template.metadata?.labels ?? {})) if (!CONTROLLER_POD_LABELS.includes(key)) labels[key] = value;
  labels[podLabels.RESTORED_FROM] = podLabels.restoredFromLabelValue(checkpointName);
  Object.assign(labels, options.extraLabels);

  restoreOriginalImages(spec, oldAnnotations[annotations.ORIGINAL_IMAGES]);
  if (oldAnnotations[annotations.HOOKS_STATUS] !== undefined) removeHookSocket(spec);
  if (oldAnnotations[annotations.RESTORED_CHECKPOINT_UID] !== undefined) removeRestoreRequirements(spec);
  removeServiceAccountToken(spec);
  delete spec.nodeName;
  delete spec.ephemeralContainers;
  delete spec.priority;
  delete spec.preemptionPolicy;
  delete spec.overhead;
  if (options.nodeName !== undefined) requireNode(spec, options.nodeName);

  const metadata: V1Pod['metadata'] = { namespace: checkpoint.metadata?.namespace, labels, annotations: podAnnotations };
  if (options.name !== undefined) metadata.name = options.name;
  else metadata.generateName = options.generateName ?? `${checkpoint.spec.podName}-restored-`;
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec };
}

/** Every container the webhook re-pointed at a checkpoint image gets the image its pod asked for. */
function restoreOriginalImages(spec: V1PodSpec, recorded: string | undefined): void {
  if (recorded === undefined) return;
  let original: unknown;
  try {
    original = JSON.parse(recorded);
  } catch {
    return;
  }
  if (typeof original !== 'object' || original === null || Array.isArray(original)) return;
  for (const container of spec.containers ?? []) {
    const image = (original as Record<string, unknown>)[container.name];
    if (typeof image === 'string' && image !== '') container.image = image;
  }
}

/** The webhook's hook socket: volume, mounts and env; it adds them again for `cryo.dev/hooks: enabled`. */
function removeHookSocket(spec: V1PodSpec): void {
  removeVolume(spec, (volume) => volume.name === HOOK_VOLUME_NAME);
  for (const container of spec.containers ?? []) {
    if (container.env !== undefined) container.env = container.env.filter((env) => !HOOK_ENV.has(env.name));
    if (container.env?.length === 0) delete container.env;
  }
}

function removeServiceAccountToken(spec: V1PodSpec): void {
  removeVolume(spec, (volume) => volume.name.startsWith(SERVICE_ACCOUNT_VOLUME_PREFIX) && (volume.projected?.sources ?? []).some((source) => source.serviceAccountToken !== undefined));
}

/** Drops matching volumes and every container's mounts of them. */
function removeVolume(spec: V1PodSpec, matches: (volume: V1Volume) => boolean): void {
  const removed = new Set((spec.volumes ?? []).filter(matches).map((volume) => volume.name));
  if (removed.size === 0) return;
  spec.volumes = spec.volumes!.filter((volume) => !removed.has(volume.name));
  if (spec.volumes.length === 0) delete spec.volumes;
  const containers: V1Container[] = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  for (const container of containers) {
    if (container.volumeMounts === undefined) continue;
    container.volumeMounts = container.volumeMounts.filter((mount) => !removed.has(mount.name));
    if (container.volumeMounts.length === 0) delete container.volumeMounts;
  }
}

/**
 * The node requirements the webhook added to the old (itself restored) pod: its restore-runtime
 * label, and the pin to the node holding a node-local checkpoint (the node the pod ran on). The
 * webhook adds what the new checkpoint needs; the old ones would keep the pod off nodes it may use.
 * A term left empty held only the webhook's requirements (it adds a term of its own when the pod
 * had none), so it goes; with no term left, so does the requirement.
 */
function removeRestoreRequirements(spec: V1PodSpec): void {
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required === undefined) return;
  const oldNode = spec.nodeName;
  const isWebhooks = (list: 'matchExpressions' | 'matchFields', requirement: V1NodeSelectorRequirement) =>
    list === 'matchExpressions'
      ? requirement.key === nodeLabels.RESTORE_RUNTIME
      : requirement.key === 'metadata.name' && requirement.operator === 'In' && oldNode !== undefined && requirement.values?.length === 1 && requirement.values[0] === oldNode;
  const terms: V1NodeSelectorTerm[] = [];
  for (const term of required.nodeSelectorTerms ?? []) {
    if (isEmptyTerm(term)) {
      terms.push(term);
      continue;
    }
    const kept: V1NodeSelectorTerm = { ...term };
    for (const list of ['matchExpressions', 'matchFields'] as const) {
      if (term[list] === undefined) continue;
      const rest = term[list].filter((requirement) => !isWebhooks(list, requirement));
      if (rest.length === 0) delete kept[list];
      else kept[list] = rest;
    }
    if (!isEmptyTerm(kept)) terms.push(kept);
  }
  if (terms.length > 0) {
    required.nodeSelectorTerms = terms;
    return;
  }
  const nodeAffinity = spec.affinity!.nodeAffinity!;
  delete nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  if (Object.keys(nodeAffinity).length === 0) delete spec.affinity!.nodeAffinity;
  if (Object.keys(spec.affinity!).length === 0) delete spec.affinity;
}

/** ANDs `metadata.name In [node]` into every required term (replacing another node pin), or adds the one term. */
function requireNode(spec: V1PodSpec, nodeName: string): void {
  const pin: V1NodeSelectorRequirement = { key: 'metadata.name', operator: 'In', values: [nodeName] };
  const affinity = (spec.affinity ??= {});
  const nodeAffinity = (affinity.nodeAffinity ??= {});
  const required = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  const terms = (required?.nodeSelectorTerms ?? []).filter((term) => !isEmptyTerm(term));
  if (terms.length === 0) {
    // An empty term selects no node; it cannot be ANDed into, and alone it stays as it is: no node.
    if ((required?.nodeSelectorTerms ?? []).length > 0) return;
    nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms: [{ matchFields: [pin] }] };
    return;
  }
  required!.nodeSelectorTerms = required!.nodeSelectorTerms.map((term) =>
    isEmptyTerm(term) ? term : { ...term, matchFields: [...(term.matchFields ?? []).filter((r) => r.key !== pin.key), { ...pin, values: [nodeName] }] },
  );
}

function isEmptyTerm(term: V1NodeSelectorTerm): boolean {
  return (term.matchExpressions?.length ?? 0) === 0 && (term.matchFields?.length ?? 0) === 0;
}
