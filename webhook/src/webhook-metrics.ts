/** The webhook's Prometheus metrics (all `cryo_webhook_*`), declared in one place. */
import { Metrics } from '@cryo/common';

export function createWebhookMetrics(metrics = new Metrics()) {
  return {
    metrics,
    admissions: metrics.counter(
      'webhook_admissions_total',
      'Pod admissions by decision (patched, unchanged, denied, ignored) and denial reason',
      ['decision', 'reason'],
    ),
    admissionDuration: metrics.histogram('webhook_admission_duration_seconds', 'Time to decide one admission', ['decision']),
    badRequests: metrics.counter('webhook_bad_requests_total', 'Requests refused with HTTP 400, 401, 403 or 413, by reason', ['reason']),
    checkpointLookups: metrics.counter(
      'webhook_checkpoint_lookups_total',
      'Checkpoint lookups by source (cache, api) and result (found, missing, error, throttled)',
      ['source', 'result'],
    ),
  };
}

export type WebhookMetrics = ReturnType<typeof createWebhookMetrics>;
