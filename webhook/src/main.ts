#!/usr/bin/env node
/**
 * The webhook process. `--help` lists flags and env vars. On SIGTERM it fails readiness first and
 * keeps serving for --shutdown-delay, so the Service stops sending before connections close.
 */
import { createLogger, describeOptions, OptionError } from '@cryo/common';
import { readWebhookConfig, webhookOptionSpecs } from './config.ts';
import { startWebhook } from './webhook.ts';

const logger = createLogger('cryo-webhook');

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`Usage: cryo-webhook [flags]\n\nFlags (each also settable by its env var):\n${describeOptions(webhookOptionSpecs)}\n`);
    return;
  }
  const config = readWebhookConfig();
  const webhook = await startWebhook(config, { logger });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, delaySeconds: config.shutdownDelaySeconds }, 'shutting down');
    void webhook.stop({ drainSeconds: config.shutdownDelaySeconds }).then(() => logger.info('stopped'));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof OptionError) {
    logger.error(`bad configuration: ${err.message}`);
  } else {
    logger.error({ err }, `webhook failed to start: ${err instanceof Error ? err.message : String(err)}`);
  }
  process.exitCode = 1;
});
