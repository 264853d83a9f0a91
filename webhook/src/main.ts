#!/usr/bin/env node
/**
 * The webhook process (common/src/run-daemon.ts: `--help`, flags, signals, errors). On SIGTERM it
 * fails readiness first and keeps serving for --shutdown-delay, so the Service stops sending
 * before connections close.
 */
import { formatDuration, runDaemon } from '@cryo/common';
import { readWebhookConfig, webhookOptionSpecs } from './config.ts';
import { startWebhook } from './webhook.ts';

await runDaemon({
  name: 'cryo-webhook',
  specs: webhookOptionSpecs,
  readConfig: readWebhookConfig,
  async start(config, deps) {
    const webhook = await startWebhook(config, deps);
    return {
      stop: () => {
        deps.logger.info(`failing readiness, serving ${formatDuration(config.shutdownDelaySeconds)} more before closing`);
        return webhook.stop({ drainSeconds: config.shutdownDelaySeconds });
      },
    };
  },
});
