/**
 * `kubectl cryo`: the command table, top-level help, and how every failure becomes one `error:`
 * line and a documented exit code. run() is the whole CLI without the process around it, so
 * tests call it in-process as well as through a child process.
 */
import { GLOBAL_HELP, parseCommandArgs, stringValue } from './args.ts';
import type { Command, CommandContext, Tuning } from './command.ts';
import { checkpointCommand } from './commands/checkpoint.ts';
import { describeCommand } from './commands/describe.ts';
import { drainCommand } from './commands/drain.ts';
import { getCommand } from './commands/get.ts';
import { migrateCommand } from './commands/migrate.ts';
import { restoreCommand } from './commands/restore.ts';
import { uncordonCommand } from './commands/uncordon.ts';
import { CliError, EXIT, fromApiError, Interrupted, TimedOut } from './errors.ts';
import { line, type Io } from './io.ts';
import { connect, type Kube } from './kube.ts';

export { EXIT } from './errors.ts';
export type { Io, Output } from './io.ts';

export const COMMANDS: readonly Command[] = [checkpointCommand, getCommand, describeCommand, restoreCommand, migrateCommand, drainCommand, uncordonCommand];

export const TOP_HELP = `kubectl cryo: checkpoint, restore and migrate pods with Cryo.

Usage:
  kubectl cryo <command> [arguments] [flags]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(12)}${c.summary}`).join('\n')}

Examples:
  kubectl cryo checkpoint web-7c9f8-x2vqz --wait        # checkpoint a pod, follow it to the end
  kubectl cryo get                                      # the namespace's Checkpoints
  kubectl cryo describe checkpoint web-7c9f8-x2vqz-k4m2p
  kubectl cryo restore web-7c9f8-x2vqz-k4m2p --copies 3 --wait
  kubectl cryo migrate web-7c9f8-x2vqz --to worker-3 --wait
  kubectl cryo drain worker-2 --reboot --wait && kubectl cryo uncordon worker-2 --restore --wait

Everything it does is creating and reading API objects (Checkpoints, Migrations, pods, evictions,
the node's cordon); the work is done in the cluster by Cryo's node agents and controller. So
interrupting it (Ctrl-C, a lost connection) loses nothing: what it created carries on, and
kubectl cryo get / describe shows where it is.

${GLOBAL_HELP}

Exit codes:
  0  done
  1  the operation failed (a Checkpoint or Migration Failed, a pod that cannot start, a refusal)
  2  usage error (unknown flag, missing argument, bad value)
  3  not found, or not allowed (401/403)
  4  timed out waiting (--timeout); what was created carries on
  130  interrupted (Ctrl-C); what was created carries on

Run kubectl cryo <command> --help for a command's flags and examples.
`;

export interface RunOptions {
  /** Aborted on Ctrl-C (main.ts); never in tests unless they abort it. */
  signal?: AbortSignal;
  tuning?: Tuning;
}

/** Runs one command line (argv without `kubectl-cryo`); resolves its exit code. Never throws. */
export async function run(argv: readonly string[], io: Io, options: RunOptions = {}): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    const command = topic === undefined ? undefined : findCommand(topic);
    if (name === undefined) {
      io.stderr.write(TOP_HELP);
      return EXIT.USAGE;
    }
    io.stdout.write(command === undefined ? TOP_HELP : commandHelp(command));
    return EXIT.OK;
  }
  if (name === 'version' || name === '--version') {
    line(io.stdout, `kubectl-cryo ${VERSION}`);
    return EXIT.OK;
  }
  const command = findCommand(name);
  if (command === undefined) {
    line(io.stderr, `error: unknown command "${name}"; the commands are ${COMMANDS.map((c) => c.name).join(', ')} (kubectl cryo --help)`);
    return EXIT.USAGE;
  }
  const signal = options.signal ?? new AbortController().signal;
  let kube: Kube | undefined;
  try {
    const parsed = parseCommandArgs(command.name, rest, command.options);
    if (parsed.values.help === true) {
      io.stdout.write(commandHelp(command));
      return EXIT.OK;
    }
    const ctx: CommandContext = {
      parsed,
      io,
      signal,
      kube: () => (kube ??= connect({ kubeconfig: stringValue(parsed.values, 'kubeconfig'), context: stringValue(parsed.values, 'context'), namespace: stringValue(parsed.values, 'namespace') })),
      ...(options.tuning === undefined ? {} : { tuning: options.tuning }),
    };
    return await command.run(ctx);
  } catch (err) {
    return report(io, err, command, kube);
  }
}

function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}

function commandHelp(command: Command): string {
  return `${command.help}\n\n${GLOBAL_HELP}\n`;
}

function report(io: Io, err: unknown, command: Command, kube: Kube | undefined): number {
  if (err instanceof Interrupted) {
    line(io.stderr, `interrupted: nothing is lost; whatever kubectl cryo ${command.name} created carries on in the cluster (kubectl cryo get checkpoints,migrations)`);
    return EXIT.INTERRUPTED;
  }
  if (err instanceof TimedOut) {
    line(io.stderr, `error: ${err.message}; whatever was created carries on in the cluster`);
    return EXIT.TIMEOUT;
  }
  const failure = err instanceof CliError ? err : fromApiError(err, kube === undefined ? {} : { server: kube.server });
  line(io.stderr, `error: ${failure.message}`);
  return failure.exitCode;
}

const VERSION = '0.1.0';
