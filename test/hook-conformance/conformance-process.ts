/**
 * Drives one conformance app (any language) over its stdin/stdout contract
 * (test/hook-conformance/README.md) and keeps the events it printed.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { waitFor } from '@cryo/test';

export type ConformanceEvent = { event: string } & Record<string, unknown>;

export class ConformanceProcess {
  readonly events: ConformanceEvent[] = [];
  readonly stderr: string[] = [];
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly exited: Promise<number | null>;

  constructor(argv: readonly string[], env: Record<string, string>) {
    this.child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: 'pipe' });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as ConformanceEvent);
      } catch {
        this.stderr.push(`(not an event on stdout) ${line}`);
      }
    });
    createInterface({ input: this.child.stderr }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** Sends a command and waits for its ack. */
  async command(command: Record<string, unknown>): Promise<void> {
    const acks = this.events.filter((e) => e.event === 'ack' && e.cmd === command.cmd).length;
    this.child.stdin.write(JSON.stringify(command) + '\n');
    await this.waitFor((events) => events.filter((e) => e.event === 'ack' && e.cmd === command.cmd).length > acks, `ack of ${String(command.cmd)}`);
  }

  /** Waits until `probe` holds over the events so far. */
  async waitFor(probe: (events: ConformanceEvent[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => probe(this.events), { what: `${what}; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr.join('\n')}`, timeoutMs, intervalMs: 10 }).catch((error: Error) => {
      throw new Error(error.message.slice(0, 6000));
    });
  }

  /** The events of one kind, in order. */
  of(event: string): ConformanceEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  /** Hook calls as "phase name" strings, in the order they started. */
  hookCalls(): string[] {
    return this.of('hook').map((e) => `${String(e.phase)} ${String(e.name)}`);
  }

  async exit(): Promise<number | null> {
    if (this.child.exitCode === null) {
      this.child.stdin.write(JSON.stringify({ cmd: 'exit' }) + '\n');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
      const code = await this.exited;
      clearTimeout(timer);
      return code;
    }
    return this.child.exitCode;
  }
}
