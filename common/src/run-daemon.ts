/**
 * The one process wrapper of the webhook, the node agent and the controller (each main.ts is a
 * call to runDaemon): `--help`; flags and env vars read and checked; the cluster found before
 * any client is made; the settings it runs with logged; SIGTERM and SIGINT stop it gracefully
 * (a second one exits at once); errors logged in one line.
 *
 * Exit codes: 2 when the configuration is wrong (a bad flag, no cluster configured: nothing was
 * started), 1 when starting or stopping failed.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from './kube/kube-config.ts';
import { createLogger, type Logger } from './logger.ts';
import { describeSettings, helpText, OptionError, type OptionSpecs } from './options.ts';

export interface Daemon<C extends { kubeconfig: string }> {
  /** `cryo-webhook`: the logger's component and the usage line's name. */
  name: string;
  specs: OptionSpecs;
  /** Reads and checks the configuration; throws OptionError. */
  readConfig(argv: readonly string[], env: NodeJS.ProcessEnv): C;
  start(config: C, deps: { kubeConfig: KubeConfig; logger: Logger }): Promise<{ stop(): Promise<void> }>;
}

export interface DaemonProcess {
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Where --help goes. */
  stdout?: { write(text: string): unknown };
  /** The process whose signals stop the daemon and whose exit code is set. */
  process?: { on(signal: NodeJS.Signals, listener: () => void): unknown; exit(code?: number): void; exitCode?: number | string | null | undefined };
}

/** Runs a daemon until SIGTERM or SIGINT; resolves once it is started (or failed to start). */
export async function runDaemon<C extends { kubeconfig: string }>(daemon: Daemon<C>, options: DaemonProcess = {}): Promise<void> {
  const argv = options.argv ?? process.argv.slice(2);
  const proc = options.process ?? process;
  if (argv.includes('--help') || argv.includes('-h')) {
    (options.stdout ?? process.stdout).write(helpText(`${daemon.name} [flags]`, daemon.specs));
    return;
  }
  const logger = options.logger ?? createLogger(daemon.name);
  let running: { stop(): Promise<void> };
  try {
    const config = daemon.readConfig(argv, options.env ?? process.env);
    // Before any client exists: without a cluster, client-node would make up localhost:8080.
    const kubeConfig = loadKubeConfig(config.kubeconfig);
    logger.info({ settings: describeSettings(daemon.specs, config) }, 'starting');
    running = await daemon.start(config, { kubeConfig, logger });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof OptionError) logger.error(`cannot start: ${message}`);
    else logger.error({ err }, `failed to start: ${message}`);
    proc.exitCode = err instanceof OptionError ? 2 : 1;
    return;
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      proc.exit(1);
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => logger.info('stopped'),
      (err: unknown) => {
        logger.error({ err }, `failed to stop cleanly: ${err instanceof Error ? err.message : String(err)}`);
        proc.exitCode = 1;
      },
    );
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) proc.on(signal, () => stop(signal));
}
