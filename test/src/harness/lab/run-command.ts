/** Runs a command to its end with a deadline, collecting its output (what every lab call needs). */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface CommandResult {
  /** The exit code; 128 + the signal number when a signal ended it (as a shell reports it). */
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  timeoutMs?: number;
  /** Written to the command's stdin (closed right away when absent). */
  input?: string;
  /** Variables set for the command, over this process's environment. */
  env?: Record<string, string>;
  /** The working directory (this process's when absent). */
  cwd?: string;
}

export function runCommand(argv: string[], { timeoutMs = 30_000, input, env, cwd }: CommandOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], cwd, ...(env === undefined ? {} : { env: { ...process.env, ...env } }) });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.stdin.on('error', () => {}); // a command that exits without reading its input
    child.stdin.end(input);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = {
        code: code ?? 128 + (signal ? constants.signals[signal] : 0),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      };
      if (timedOut) {
        reject(new Error(`timed out after ${timeoutMs} ms: ${argv.join(' ')}\n${result.stderr}${result.stdout}`.trimEnd()));
      } else {
        resolve(result);
      }
    });
  });
}
