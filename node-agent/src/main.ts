#!/usr/bin/env node
/** The node agent process (a DaemonSet). `--help` lists flags and env vars. */
import { createLogger, describeOptions, OptionError } from '@cryo/common';
import { nodeAgentOptionSpecs, readNodeAgentConfig } from './config.ts';
import { startNodeAgent } from './node-agent.ts';

const logger = createLogger('cryo-node-agent');

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`Usage: cryo-node-agent [flags]\n\nFlags (each also settable by its env var):\n${describeOptions(nodeAgentOptionSpecs)}\n`);
    return;
  }
  const agent = await startNodeAgent(readNodeAgentConfig(), { logger });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void agent.stop().then(() => logger.info('stopped'));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof OptionError) logger.error(`bad configuration: ${err.message}`);
  else logger.error({ err }, `node agent failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
