/**
 * The TLS metrics, declared once per `Metrics` registry: two sources built against the same
 * registry (tests, a restart of the source) share them instead of failing on a duplicate name.
 */
import type { Metrics } from '@cryo/common';
import type { Counter, Gauge } from 'prom-client';

export interface TlsMetrics {
  servingCertExpiry: Gauge;
  servingCertRotations: Counter;
  caBundleWrites: Counter;
}

const byRegistry = new WeakMap<Metrics, TlsMetrics>();

export function tlsMetrics(metrics: Metrics): TlsMetrics {
  let declared = byRegistry.get(metrics);
  if (declared === undefined) {
    declared = {
      servingCertExpiry: metrics.gauge(
        'webhook_serving_cert_expiry_timestamp_seconds',
        'When the serving certificate in use expires (Unix seconds).',
      ),
      servingCertRotations: metrics.counter(
        'webhook_serving_cert_rotations_total',
        'Times the serving certificate in use was replaced without a restart (renewed here, by another replica, or reloaded from files).',
      ),
      caBundleWrites: metrics.counter(
        'webhook_ca_bundle_writes_total',
        'Writes of the CA into the MutatingWebhookConfiguration caBundle (a steady rise means something keeps resetting it).',
      ),
    };
    byRegistry.set(metrics, declared);
  }
  return declared;
}
