/**
 * Picks where the serving certificate comes from: files provided from outside (cert-manager)
 * when --tls-cert-file and --tls-key-file are set, otherwise generated and shared through the
 * TLS Secret with the caBundle kept current.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { OptionError, type Logger, type Metrics, type BackoffOptions } from '@cryo/common';
import type { WebhookConfig } from '../config.ts';
import { FileTlsSource } from './file-tls-source.ts';
import { GeneratedTlsSource } from './generated-tls-source.ts';
import type { TlsSource } from './tls-source.ts';

export type TlsConfig = Pick<
  WebhookConfig,
  | 'namespace'
  | 'serviceName'
  | 'webhookConfigName'
  | 'tlsSecretName'
  | 'tlsCertFile'
  | 'tlsKeyFile'
  | 'servingCertValiditySeconds'
  | 'servingCertRenewBeforeSeconds'
  | 'tlsResyncSeconds'
>;

export interface TlsSourceDeps {
  /** Required for generated TLS; unused with files. */
  kubeConfig?: KubeConfig;
  logger: Logger;
  metrics: Metrics;
  /** Retry delays after API errors (defaults: 500 ms doubling to 30 s). */
  backoff?: BackoffOptions;
}

export function createTlsSource(config: TlsConfig, deps: TlsSourceDeps): TlsSource {
  const logger = deps.logger.child({ subsystem: 'tls' });
  if (config.tlsCertFile !== '' || config.tlsKeyFile !== '') {
    if (config.tlsCertFile === '' || config.tlsKeyFile === '') {
      throw new OptionError('--tls-cert-file and --tls-key-file go together: set both, or neither for generated TLS');
    }
    return new FileTlsSource({
      certFile: config.tlsCertFile,
      keyFile: config.tlsKeyFile,
      pollSeconds: config.tlsResyncSeconds,
      logger,
      metrics: deps.metrics,
    });
  }
  if (deps.kubeConfig === undefined) throw new Error('generated TLS needs a kubeConfig to reach the TLS Secret');
  return new GeneratedTlsSource({
    kubeConfig: deps.kubeConfig,
    namespace: config.namespace,
    serviceName: config.serviceName,
    webhookConfigName: config.webhookConfigName,
    secretName: config.tlsSecretName,
    validitySeconds: config.servingCertValiditySeconds,
    renewBeforeSeconds: config.servingCertRenewBeforeSeconds,
    resyncSeconds: config.tlsResyncSeconds,
    logger,
    metrics: deps.metrics,
    backoff: deps.backoff,
  });
}
