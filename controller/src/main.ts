#!/usr/bin/env node
/** The controller process (a Deployment of two, one leading). `--help` lists flags and env vars. */
import { createLogger, describeOptions, OptionError } from '@cryo/common';
import { controllerOptionSpecs, readControllerConfig } from './config.ts';
import { startController } from './controller.ts';

const logger = createLogger('cryo-controller');

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`Usage: cryo-controller [flags]\n\nFlags (each also settable by its env var):\n${describeOptions(controllerOptionSpecs)}\n`);
    return;
  }
  const controller = await startController(readControllerConfig(), { logger });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Releasing the Lease lets the other replica take over at once rather than after the lease duration.
    void controller.stop().then(() => logger.info('stopped'));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof OptionError) logger.error(`bad configuration: ${err.message}`);
  else logger.error({ err }, `controller failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
