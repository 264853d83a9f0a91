/** Test helper: a real pino logger whose lines the test can read back as objects. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface CapturedLogger {
  logger: Logger;
  lines: Record<string, unknown>[];
  /** The `msg` of every line at `level`. */
  messages(level?: string): string[];
}

export function captureLogger(): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const logger = pino({ level: 'debug', formatters: { level: (label) => ({ level: label }) } }, stream);
  return {
    logger,
    lines,
    messages: (level) => lines.filter((line) => level === undefined || line.level === level).map((line) => String(line.msg)),
  };
}
