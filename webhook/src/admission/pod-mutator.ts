/**
 * Decides one pod admission: what to change for `cryo.dev/restore-from` and `cryo.dev/hooks`,
 * or why to refuse. Mutates a copy (pod-patch.ts) and returns the JSON Patch from the original
 * to it, so no patch path is written by hand; a second call on its own output yields an empty patch.
 * Every pod it is sent, annotated or not, is also held to hook-socket-guard.ts: nothing in it but
 * the injected mount reaches the node agent's hook directory. An UPDATE adding ephemeral
 * containers is only checked (decideEphemeralContainers), never patched.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { annotations, describeApiError, type Checkpoint } from '@cryo/common';
import { AdmissionDenial } from './admission-denial.ts';
import { assertEphemeralContainersConfined, assertHookSocketConfined } from './hook-socket-guard.ts';
import { applyHookSocket, recordsHookMount, type HookSocketOptions } from './hook-socket-mutation.ts';
import { applyMigrationReplacement, type MigrationReplacement } from './migration-replacement.ts';
import { assertMountsPresent } from './mount-check.ts';
import { diffPod, mutableCopy, type JsonPatchOperation } from './pod-patch.ts';
import { applyRestore, checkpointProblem, planRestore, validateCheckpointName } from './restore-mutation.ts';
import {
  checkpointHoldingNode,
  holdingNodeWarning,
  nodeNameRequirement,
  requireNodeAffinity,
  restoreNodeRequirement,
  restoreNodeWarning,
} from './restore-node-affinity.ts';

export type { JsonPatchOperation } from './pod-patch.ts';

/** Where the mutator finds Checkpoints; `fresh` asks for a direct API read, bypassing the cache. */
export interface CheckpointLookup {
  get(namespace: string, name: string, options?: { fresh?: boolean }): Promise<Checkpoint | undefined>;
}

export interface MutatorOptions extends HookSocketOptions {
  hostHooksDir: string;
  /** imagePullSecret for checkpoint images in a registry store; '' for none. */
  pullSecret: string;
}

export type PodDecision =
  | { allowed: true; patch: JsonPatchOperation[]; warnings: string[]; checkpoint?: string }
  | { allowed: false; denial: AdmissionDenial; checkpoint?: string };

/**
 * `replacement`: the pod replaces one a Migration moves (migration-replacement.ts); it is restored
 * from the Migration's checkpoint as if annotated so.
 */
export async function decidePod(
  pod: V1Pod,
  namespace: string,
  lookup: CheckpointLookup,
  options: MutatorOptions,
  replacement?: MigrationReplacement,
): Promise<PodDecision> {
  const podAnnotations = pod.metadata?.annotations;
  if (!annotations.hasCryoAnnotation(podAnnotations) && replacement === undefined) {
    // Not sent by the shipped configuration (its matchConditions want a cryo.dev/ annotation; the
    // ValidatingAdmissionPolicy holds such pods to the rule), but refused if sent all the same.
    try {
      assertHookSocketConfined(pod, { ...hookSocketOptions(options), hooks: false });
    } catch (err) {
      if (err instanceof AdmissionDenial) return { allowed: false, denial: err };
      throw err;
    }
    return { allowed: true, patch: [], warnings: [] };
  }
  const checkpointName = replacement?.checkpointName ?? podAnnotations?.[annotations.RESTORE_FROM];
  try {
    const mutated = mutableCopy(pod);
    const warnings: string[] = replacement === undefined ? [] : applyMigrationReplacement(mutated, replacement);
    const hooksAnnotation = podAnnotations?.[annotations.HOOKS];
    let hooks = hooksRequested(hooksAnnotation);
    let plan;
    if (checkpointName !== undefined) {
      validateCheckpointName(checkpointName);
      const checkpoint = await resolveCheckpoint(lookup, namespace, checkpointName);
      plan = planRestore(mutated, checkpoint);
      applyRestore(mutated, plan, options);
      // The restored processes had the socket mounted: the restore needs the mount again (CRIU
      // restores every recorded mount), and the SDK in them waits to be told it is a copy, which
      // only a served socket can do. So the pod becomes hook-enabled, annotation included: that
      // one annotation decides what the node agent serves, and the user sees why.
      const needsHooks = [...plan.matches.values()].some((c) => recordsHookMount(c.mountDestinations));
      if (needsHooks && !hooks) {
        hooks = true;
        const replaced = hooksAnnotation === undefined ? '' : ` (replacing ${annotations.HOOKS}: ${hooksAnnotation})`;
        warnings.push(
          `Checkpoint "${checkpointName}" was taken with the hook socket mounted: the restored pod gets it too ` +
            `and is annotated ${annotations.HOOKS}: ${annotations.HOOKS_ENABLED}${replaced}, so the node agent ` +
            'serves it and tells the restored processes they were restored',
        );
      }
      // Only a node whose runtime restores this checkpoint can start the pod: elsewhere it would
      // start fresh or crash-loop. The node agent labels the nodes that can.
      const requirement = restoreNodeRequirement(plan.matches.values());
      if (requireNodeAffinity(mutated, { matchExpressions: [requirement] })) warnings.push(restoreNodeWarning(checkpointName, requirement));
      // A node-local directory store's images are served only on its node's loopback: elsewhere the pull fails.
      const holdingNode = checkpointHoldingNode(plan.checkpoint.status ?? {});
      if (holdingNode !== undefined && requireNodeAffinity(mutated, { matchFields: [nodeNameRequirement(holdingNode)] })) {
        warnings.push(holdingNodeWarning(checkpointName, holdingNode));
      }
    }
    if (hooks) applyHookSocket(mutated, hookSocketOptions(options));
    // Whatever the pod declared itself: only the injected volume, mounted only as injected.
    assertHookSocketConfined(mutated, { ...hookSocketOptions(options), hooks });
    if (plan !== undefined) {
      for (const [container, checkpointed] of plan.matches) {
        assertMountsPresent(container, checkpointed.mountDestinations, checkpointName!);
      }
    }
    return { allowed: true, patch: diffPod(pod, mutated), warnings, checkpoint: checkpointName };
  } catch (err) {
    if (err instanceof AdmissionDenial) return { allowed: false, denial: err, checkpoint: checkpointName };
    throw err;
  }
}

/**
 * An UPDATE of the pods/ephemeralcontainers subresource (kubectl debug). Nothing but the
 * ephemeral containers can change there, so nothing is patched (an unchanged pod, or one whose
 * new ephemeral containers leave the hook directory alone, is allowed as it is); an ephemeral
 * container mounting a volume that reaches the hook directory is refused.
 */
export function decideEphemeralContainers(pod: V1Pod, oldPod: V1Pod | undefined, options: MutatorOptions): PodDecision {
  try {
    assertEphemeralContainersConfined(pod, oldPod, options.hostHooksDir);
    return { allowed: true, patch: [], warnings: [] };
  } catch (err) {
    if (err instanceof AdmissionDenial) return { allowed: false, denial: err };
    throw err;
  }
}

function hooksRequested(value: string | undefined): boolean {
  if (value === undefined || value === 'disabled') return false;
  if (value === annotations.HOOKS_ENABLED) return true;
  throw new AdmissionDenial(
    422,
    'invalid-hooks-annotation',
    `annotation ${annotations.HOOKS} must be "${annotations.HOOKS_ENABLED}" or "disabled", got ${JSON.stringify(value)}`,
  );
}

/**
 * The cache answers first. Before refusing on what it says (missing, not yet Succeeded), read the
 * API once: the Checkpoint may have been created or finished a moment ago.
 */
async function resolveCheckpoint(lookup: CheckpointLookup, namespace: string, name: string): Promise<Checkpoint> {
  let checkpoint = await lookup.get(namespace, name);
  let problem = checkpointProblem(checkpoint, namespace, name);
  if (problem !== undefined) {
    try {
      checkpoint = await lookup.get(namespace, name, { fresh: true });
    } catch (err) {
      throw new AdmissionDenial(
        503,
        'checkpoint-read-failed',
        `could not read Checkpoint "${namespace}/${name}" from the API (${describeApiError(err)}); try again`,
      );
    }
    problem = checkpointProblem(checkpoint, namespace, name);
  }
  if (problem !== undefined) throw problem;
  return checkpoint!;
}

function hookSocketOptions(options: MutatorOptions): HookSocketOptions {
  return { hostHooksDir: options.hostHooksDir, ...(options.hookSocketVolume !== undefined ? { hookSocketVolume: options.hookSocketVolume } : {}) };
}
