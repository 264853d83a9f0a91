/**
 * The one pino logger factory. JSON lines to stdout; level from LOG_LEVEL (default info).
 * Components bind the ids that matter (request uid, pod, checkpoint) with child loggers.
 *
 * Logs go out through pino's asynchronous destination: under load it coalesces lines into few
 * writes instead of one write(2) per line (on the webhook's hot path that was a tenth of its
 * CPU), and flushes what is left when the process exits. Timestamps are pino's epoch
 * milliseconds (`time`), the cheapest to produce.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: process.env.LOG_LEVEL ?? 'info',
      base: { component },
      formatters: { level: (label) => ({ level: label }) },
      ...options,
    },
    pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything, for tests and benchmarks that measure, not read, logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
