/**
 * The one pino logger factory. JSON lines to stdout; level from LOG_LEVEL (default info).
 * Components bind the ids that matter (request uid, pod, checkpoint) with child loggers.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  return pino({
    name: component,
    level: process.env.LOG_LEVEL ?? 'info',
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    ...options,
  });
}

/** A logger that drops everything, for tests and benchmarks that measure, not read, logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
