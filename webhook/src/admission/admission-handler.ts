/**
 * One AdmissionReview in, one out: parse, decide, encode the patch, log and count.
 * Requests other than Pod CREATE are allowed untouched (the configuration only sends those,
 * but a hand-edited one must not break pods).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from '@cryo/common';
import { parseAdmissionReview, reviewResponse, type AdmissionReview } from './admission-review.ts';
import { decidePod, type CheckpointLookup, type MutatorOptions } from './pod-mutator.ts';
import type { WebhookMetrics } from '../webhook-metrics.ts';

export interface AdmissionHandlerDeps {
  lookup: CheckpointLookup;
  options: MutatorOptions;
  logger: Logger;
  metrics: WebhookMetrics;
}

export type AdmissionHandler = (body: unknown) => Promise<AdmissionReview>;

export function createAdmissionHandler(deps: AdmissionHandlerDeps): AdmissionHandler {
  const { lookup, options, logger, metrics } = deps;
  return async (body) => {
    const started = process.hrtime.bigint();
    const request = parseAdmissionReview(body);
    const isPodCreate = request.operation === 'CREATE' && request.kind.kind === 'Pod' && (request.kind.group ?? '') === '';
    if (!isPodCreate) {
      metrics.admissions.inc({ decision: 'ignored', reason: 'not-pod-create' });
      return reviewResponse({ uid: request.uid, allowed: true });
    }
    const pod = request.object as V1Pod;
    // On CREATE the object may lack its namespace and name (generateName): take the request's.
    const namespace = request.namespace || pod.metadata?.namespace || 'default';
    const podName = pod.metadata?.name || request.name || `${pod.metadata?.generateName ?? ''}*`;
    const decision = await decidePod(pod, namespace, lookup, options);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const log = { uid: request.uid, namespace, pod: podName, dryRun: request.dryRun === true, checkpoint: decision.checkpoint, durationMs: seconds * 1000 };
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
