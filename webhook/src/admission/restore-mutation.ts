/**
 * `cryo.dev/restore-from`: point each container that was checkpointed at its checkpoint image,
 * after checking that the checkpoint can be restored by this pod at all. Only images can be:
 * the kubelet parses a container's image as an image reference before any runtime sees it. A
 * node agent serves its directory store as a registry on the node's loopback
 * (--directory-registry-address, on by default), so directory checkpoints are images too; one
 * recorded as archive paths (an older agent, or that address set to off) is refused rather than
 * admitted into a pod that could never start (InvalidImageName).
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { annotations, type Checkpoint, type CheckpointedContainer } from '@cryo/common';
import { AdmissionDenial } from './admission-denial.ts';
import { isNodeLocalDirectory } from './restore-node-affinity.ts';

/** Kubernetes object names (DNS-1123 subdomain). */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface RestorePlan {
  checkpoint: Checkpoint;
  /** Pod container → the checkpointed container it restores. */
  matches: Map<V1Container, CheckpointedContainer>;
}

export function validateCheckpointName(name: string): void {
  if (name === '' || name.length > 253 || !OBJECT_NAME.test(name)) {
    throw new AdmissionDenial(
      422,
      'invalid-checkpoint-name',
      `annotation ${annotations.RESTORE_FROM}: ${JSON.stringify(name)} is not a Checkpoint name; ` +
        'set it to the name of a Checkpoint in the same namespace (kubectl get checkpoints)',
    );
  }
}

/** Why a checkpoint cannot be restored (yet), or undefined when it can. */
export function checkpointProblem(checkpoint: Checkpoint | undefined, namespace: string, name: string): AdmissionDenial | undefined {
  if (checkpoint === undefined) {
    return new AdmissionDenial(
      404,
      'checkpoint-not-found',
      `Checkpoint "${name}" not found in namespace "${namespace}" (annotation ${annotations.RESTORE_FROM}); ` +
        `create it first or fix the annotation: kubectl get checkpoints -n ${namespace}`,
    );
  }
  const status = checkpoint.status ?? {};
  if (status.phase === 'Expired') {
    return new AdmissionDenial(
      410,
      'checkpoint-expired',
      `Checkpoint "${namespace}/${name}" is Expired: ${status.message ?? 'retention removed its data'}; its data is gone, so no pod can restore from it: take a new Checkpoint`,
    );
  }
  if (status.phase !== 'Succeeded') {
    const detail = status.message ? `: ${status.message}` : '';
    return new AdmissionDenial(
      409,
      'checkpoint-not-succeeded',
      `Checkpoint "${namespace}/${name}" is ${status.phase ?? 'not yet processed'}${detail}; ` +
        `only a Succeeded checkpoint can be restored: wait until kubectl get checkpoint -n ${namespace} ${name} shows Succeeded, or take a new one`,
    );
  }
  if (!status.containers?.length) {
    return new AdmissionDenial(
      409,
      'checkpoint-empty',
      `Checkpoint "${namespace}/${name}" is Succeeded but records no containers; take a new checkpoint`,
    );
  }
  for (const container of status.containers) {
    if (container.referenceType === 'image' && !/@sha256:[0-9a-f]{64}$/.test(container.restoreReference)) {
      return new AdmissionDenial(
        409,
        'checkpoint-reference-not-pinned',
        `Checkpoint "${namespace}/${name}" container "${container.name}" has restore reference ` +
          `${JSON.stringify(container.restoreReference)}, which is not pinned by digest; take a new checkpoint`,
      );
    }
  }
  const archived = status.containers.find((c) => c.referenceType !== 'image');
  if (archived !== undefined) {
    const where = status.storage?.type === 'directory' ? 'in a directory store' : 'outside a registry';
    return new AdmissionDenial(
      409,
      'checkpoint-stored-as-archive',
      `Checkpoint "${namespace}/${name}" is stored as archives ${where} (container "${archived.name}": ` +
        `${archived.restoreReference}); the kubelet starts containers only from images and refuses a file path ` +
        'as image (InvalidImageName), so no pod can be restored from it. The node agent serves directory checkpoints ' +
        'as images when its --directory-registry-address is set (the default); this one was taken by an agent that ' +
        "served none (an older one, or one run with --directory-registry-address=off). Take a new Checkpoint and " +
        "restore from that one (or use a registry store: spec.storage.registry.repository, or the node agent's " +
        '--registry-repository)',
    );
  }
  // Only the node that took it serves a node-local directory checkpoint: without its name no pod can be placed there.
  if (isNodeLocalDirectory(status) && !status.nodeName) {
    return new AdmissionDenial(
      409,
      'checkpoint-node-unknown',
      `Checkpoint "${namespace}/${name}" is in a node's own directory store, and only that node can serve it, but its ` +
        'status does not record the node (status.nodeName), so no pod can be placed there; take a new checkpoint',
    );
  }
  return undefined;
}

export function planRestore(pod: V1Pod, checkpoint: Checkpoint): RestorePlan {
  const recorded = new Map((checkpoint.status?.containers ?? []).map((c) => [c.name, c]));
  const matches = new Map<V1Container, CheckpointedContainer>();
  for (const container of pod.spec?.containers ?? []) {
    const checkpointed = recorded.get(container.name);
    if (checkpointed !== undefined) matches.set(container, checkpointed);
  }
  if (matches.size === 0) {
    const podNames = (pod.spec?.containers ?? []).map((c) => c.name).join(', ') || 'none';
    throw new AdmissionDenial(
      422,
      'no-matching-container',
      `none of the pod's containers (${podNames}) matches a container in Checkpoint "${checkpoint.metadata?.name}" ` +
        `(${[...recorded.keys()].join(', ')}); name the containers as in the checkpointed pod`,
    );
  }
  return { checkpoint, matches };
}

/** Rewrites images and records what was there, in the copy of the pod that will be diffed. */
export function applyRestore(pod: V1Pod, plan: RestorePlan, options: { pullSecret: string }): void {
  const meta = (pod.metadata ??= {});
  const podAnnotations = (meta.annotations ??= {});
  // On reinvocation the images are already rewritten: keep what was recorded the first time.
  const original = parseOriginalImages(podAnnotations[annotations.ORIGINAL_IMAGES]);
  for (const [container, checkpointed] of plan.matches) {
    if (container.image !== checkpointed.restoreReference) {
      original[container.name] = container.image ?? '';
      container.image = checkpointed.restoreReference;
    }
  }
  podAnnotations[annotations.ORIGINAL_IMAGES] = JSON.stringify(original);
  podAnnotations[annotations.RESTORED_CHECKPOINT_UID] = plan.checkpoint.metadata?.uid ?? '';
  podAnnotations[annotations.RESTORED_CONTAINERS] = [...plan.matches.keys()].map((c) => c.name).join(',');

  // Every reference is an image here: checkpointProblem refused anything else. A directory
  // store's images come from the node's own loopback registry, for which the secret means nothing.
  // A storage class's pull Secret (recorded by the agent) comes before the webhook's flag: the
  // administrator gives each namespace one that reaches only its own repository.
  const storage = plan.checkpoint.status?.storage;
  const pullSecret = storage?.pullSecretName ?? options.pullSecret;
  if (pullSecret !== '' && storage?.type !== 'directory') {
    const secrets = (pod.spec!.imagePullSecrets ??= []);
    if (!secrets.some((s) => s.name === pullSecret)) secrets.push({ name: pullSecret });
  }
}

function parseOriginalImages(value: string | undefined): Record<string, string> {
  if (value === undefined) return {};
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, string>;
  } catch {
    // Not ours or damaged: start over rather than refuse the pod.
  }
  return {};
}
