#!/usr/bin/env node
/**
 * The `kubectl-cryo` executable: kubectl runs it for `kubectl cryo ...` once it is on PATH
 * (npm i -g). Ctrl-C stops waiting, never what was created; a second Ctrl-C exits at once.
 */
import { run } from './cli.ts';
import { EXIT, Interrupted } from './errors.ts';

const interrupt = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupt.signal.aborted) process.exit(EXIT.INTERRUPTED);
    interrupt.abort(new Interrupted());
  });
}
// `kubectl cryo get -o json | head`: a reader that stops early is no error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.OK);
  throw err;
});

process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, { signal: interrupt.signal });
// Keep-alive sockets must not hold the process open once the command is done; output first
// (stdout is asynchronous when it is a pipe on some platforms).
await new Promise((resolve) => process.stdout.write('', resolve));
await new Promise((resolve) => process.stderr.write('', resolve));
process.exit();
