/**
 * The SDK logs through whatever the app uses: any object with pino's `(fields, message)` methods
 * fits (pino itself does). The default writes warnings and errors to stderr and stays quiet
 * otherwise, so an app without an agent sees exactly one line.
 */
export interface HookLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

function write(level: string, fields: object, message: string): void {
  const details = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
  process.stderr.write(`cryo-hooks ${level}: ${message}${details}\n`);
}

export const stderrLogger: HookLogger = {
  debug: () => {},
  info: (fields, message) => write('info', fields, message),
  warn: (fields, message) => write('warn', fields, message),
  error: (fields, message) => write('error', fields, message),
};

export const silentHookLogger: HookLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
