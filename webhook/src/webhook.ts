/**
 * Assembles a running webhook from its configuration: Checkpoint and Migration caches, TLS source, admission
 * handler and HTTPS server. main.ts runs it as a process; tests and the benchmark run it in-process.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger, loadKubeConfig, type Logger } from '@cryo/common';
import { createAdmissionHandler } from './admission/admission-handler.ts';
import { CheckpointCache } from './checkpoint-cache.ts';
import { MigrationCache } from './migration-cache.ts';
import type { WebhookConfig } from './config.ts';
import { createWebhookApp, listenHttps, type RunningServer } from './server.ts';
import { createTlsSource, readClientCaFile } from './tls/index.ts';
import { createWebhookMetrics, type WebhookMetrics } from './webhook-metrics.ts';

export interface RunningWebhook {
  port: number;
  server: RunningServer;
  metrics: WebhookMetrics;
  /** Fail readiness, keep serving for `drainSeconds`, then close everything. */
  stop(options?: { drainSeconds?: number }): Promise<void>;
  /** Undefined when ready. */
  notReadyReason(): string | undefined;
}

export interface WebhookDeps {
  kubeConfig?: KubeConfig;
  logger?: Logger;
  /** Listen address; all interfaces when absent. */
  host?: string;
}

export async function startWebhook(config: WebhookConfig, deps: WebhookDeps = {}): Promise<RunningWebhook> {
  const logger = deps.logger ?? createLogger('cryo-webhook');
  const kubeConfig = deps.kubeConfig ?? loadKubeConfig(config.kubeconfig);
  const metrics = createWebhookMetrics();
  const checkpoints = new CheckpointCache(kubeConfig, logger.child({ part: 'checkpoint-cache' }), metrics);
  const migrations = new MigrationCache(kubeConfig, logger.child({ part: 'migration-cache' }));
  const tls = createTlsSource(config, { kubeConfig, logger: logger.child({ part: 'tls' }), metrics: metrics.metrics });
  let stopping = false;

  const notReadyReason = () => {
    if (stopping) return 'shutting down';
    if (!tls.status.ready) return 'no valid serving certificate yet';
    if (!checkpoints.hasSynced) return 'Checkpoint cache not synced yet';
    if (!migrations.hasSynced) return 'Migration cache not synced yet';
    return undefined;
  };

  await Promise.all([checkpoints.start(), migrations.start()]);
  let server: RunningServer;
  try {
    const pair = await tls.start();
    const clientAuth = config.clientCaFile === '' ? undefined : { ca: readClientCaFile(config.clientCaFile), allowedNames: config.clientAllowedNames };
    const app = createWebhookApp({
      handleAdmission: createAdmissionHandler({
        lookup: checkpoints,
        migrations,
        options: { hostHooksDir: config.hostHooksDir, hookSocketVolume: config.hookSocketVolume, pullSecret: config.checkpointPullSecret },
        logger,
        metrics,
      }),
      logger,
      metrics,
      notReadyReason,
      maxBodyBytes: config.maxBodyBytes,
      clientAuth,
    });
    server = await listenHttps(app, pair, config.port, deps.host, clientAuth?.ca);
    tls.onChange((next) => server.rotate(next));
  } catch (err) {
    await Promise.allSettled([checkpoints.stop(), migrations.stop(), tls.stop()]);
    throw err;
  }
  logger.info({ port: server.port }, 'webhook listening');

  return {
    port: server.port,
    server,
    metrics,
    notReadyReason,
    async stop(options = {}) {
      stopping = true;
      if (options.drainSeconds) await new Promise((resolve) => setTimeout(resolve, options.drainSeconds! * 1000));
      await Promise.allSettled([server.close(), checkpoints.stop(), migrations.stop(), tls.stop()]);
    },
  };
}
