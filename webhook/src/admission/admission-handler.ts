/**
 * One AdmissionReview in, one out: parse, check the pod's shape, decide, encode the patch, log
 * and count. Two kinds of request are judged: Pod CREATE (restore and hook socket, decidePod) and
 * UPDATE of pods/ephemeralcontainers (`kubectl debug`: no ephemeral container may reach the hook
 * directory, decideEphemeralContainers). Anything else is allowed untouched (the configuration
 * only sends those, but a hand-edited one must not break pods). A malformed envelope throws
 * BadAdmissionReview (HTTP 400); a malformed pod is refused in the review (422, pod-shape.ts)
 * before the mutator reads any of it.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from '@cryo/common';
import { parseAdmissionReview, reviewResponse, type AdmissionReview } from './admission-review.ts';
import { findMigrationReplacement, type MigrationLookup } from './migration-replacement.ts';
import { decideEphemeralContainers, decidePod, type CheckpointLookup, type MutatorOptions, type PodDecision } from './pod-mutator.ts';
import { podShapeProblem } from './pod-shape.ts';
import type { WebhookMetrics } from '../webhook-metrics.ts';

export interface AdmissionHandlerDeps {
  lookup: CheckpointLookup;
  /** Migrations, to restore the pods ReplicaSets and StatefulSets create to replace migrated ones; none: no such matching. */
  migrations?: MigrationLookup;
  options: MutatorOptions;
  logger: Logger;
  metrics: WebhookMetrics;
}

export type AdmissionHandler = (body: unknown) => Promise<AdmissionReview>;

export function createAdmissionHandler(deps: AdmissionHandlerDeps): AdmissionHandler {
  const { lookup, migrations, options, logger, metrics } = deps;
  return async (body) => {
    const started = process.hrtime.bigint();
    const request = parseAdmissionReview(body);
    const isPod = request.kind.kind === 'Pod' && (request.kind.group ?? '') === '';
    const isPodCreate = isPod && request.operation === 'CREATE' && !request.subResource;
    const isEphemeralUpdate = isPod && request.operation === 'UPDATE' && request.subResource === 'ephemeralcontainers';
    if (!isPodCreate && !isEphemeralUpdate) {
      metrics.admissions.inc({ decision: 'ignored', reason: 'not-pod-create' });
      return reviewResponse({ uid: request.uid, allowed: true });
    }
    // parseAdmissionReview saw to it that a CREATE has an object; an UPDATE's is checked here.
    const object = request.object as Record<string, unknown>;
    const malformed =
      podShapeProblem(object) ??
      (isEphemeralUpdate && request.oldObject !== undefined && request.oldObject !== null ? podShapeProblem(request.oldObject as Record<string, unknown>) : undefined);
    const pod = object as V1Pod;
    // On CREATE the object may lack its namespace and name (generateName): take the request's.
    // (Of a malformed pod only the request's: its metadata may be anything.)
    const metadata = malformed === undefined ? pod.metadata : undefined;
    const namespace = request.namespace || metadata?.namespace || 'default';
    const podName = metadata?.name || request.name || `${metadata?.generateName ?? ''}*`;
    const replacement =
      malformed === undefined && isPodCreate && migrations !== undefined
        ? await findMigrationReplacement(pod, namespace, metadata?.name || request.name || undefined, migrations, lookup)
        : undefined;
    let decision: PodDecision =
      malformed !== undefined
        ? { allowed: false, denial: malformed }
        : isEphemeralUpdate
          ? decideEphemeralContainers(pod, request.oldObject ?? undefined, options)
          : await decidePod(pod, namespace, lookup, options, replacement);
    if (replacement !== undefined && !decision.allowed) {
      // Its owner would retry the same pod forever: a replacement that cannot be restored starts
      // as it is (fresh), and the controller reports the Migration Failed.
      logger.warn({ uid: request.uid, namespace, pod: podName, migration: replacement.migration, checkpoint: replacement.checkpointName, reason: decision.denial.reason, message: decision.denial.message },
        'the replacement of a migrated pod cannot be restored from its checkpoint; admitting it as it is');
      decision = await decidePod(pod, namespace, lookup, options);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const log = { uid: request.uid, namespace, pod: podName, dryRun: request.dryRun === true, checkpoint: decision.checkpoint, ...(replacement === undefined ? {} : { migration: replacement.migration }), durationMs: seconds * 1000 };
    if (!decision.allowed) {
      const { denial } = decision;
      metrics.admissions.inc({ decision: 'denied', reason: denial.reason });
      metrics.admissionDuration.observe({ decision: 'denied' }, seconds);
      logger.info({ ...log, decision: 'denied', reason: denial.reason, message: denial.message }, 'pod refused');
      return reviewResponse({
        uid: request.uid,
        allowed: false,
        status: { code: denial.code, message: denial.message, reason: denial.reason },
      });
    }
    const patched = decision.patch.length > 0;
    const label = patched ? 'patched' : 'unchanged';
    metrics.admissions.inc({ decision: label, reason: '' });
    metrics.admissionDuration.observe({ decision: label }, seconds);
    logger.info({ ...log, decision: label, operations: decision.patch.length }, patched ? 'pod mutated' : 'pod admitted unchanged');
    return reviewResponse({
      uid: request.uid,
      allowed: true,
      ...(patched && { patchType: 'JSONPatch' as const, patch: Buffer.from(JSON.stringify(decision.patch)).toString('base64') }),
      ...(decision.warnings.length > 0 && { warnings: decision.warnings }),
    });
  };
}
