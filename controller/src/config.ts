/**
 * The controller's configuration: flags and env vars with documented defaults
 * (docs/migration.md#controller-configuration shows the same table, checked by config.test.ts). Checked at start: a
 * leader-election timing that could let two replicas act at once is refused.
 */
import { formatDuration, OptionError, parseDurationAtLeast, parseDurationSeconds, parseInteger, parseString, readOptions, sharedOptionSpecs, type OptionSpec } from '@cryo/common';

/** Client-go's margin: a renewal attempt may start up to this much later than the retry period. */
export const RETRY_JITTER = 1.2;

export const controllerOptionSpecs = {
  namespace: {
    flag: '--namespace', env: 'POD_NAMESPACE', default: 'cryo-system', parse: parseString,
    description: "The controller's own namespace (downward API), where its leader-election Lease lives.",
  } satisfies OptionSpec<string>,
  leaderElectionIdentity: {
    flag: '--leader-election-identity', env: 'POD_NAME', default: '', defaultText: '(the host name)', parse: parseString,
    description: 'Who this replica is in the Lease (downward API metadata.name); a random suffix is added, so a restarted replica is a new holder.',
  } satisfies OptionSpec<string>,
  leaseName: {
    flag: '--leader-election-lease', env: 'CRYO_LEADER_ELECTION_LEASE', default: 'cryo-controller', parse: parseString,
    description: 'The coordination.k8s.io/v1 Lease in --namespace through which one replica at a time acts.',
  } satisfies OptionSpec<string>,
  leaseDurationSeconds: {
    flag: '--leader-election-lease-duration', env: 'CRYO_LEADER_ELECTION_LEASE_DURATION', default: 15, parse: parseDurationAtLeast(1), format: formatDuration,
    description: 'How long the other replicas wait, after they last saw the leader renew, before taking over.',
  } satisfies OptionSpec<number>,
  renewDeadlineSeconds: {
    flag: '--leader-election-renew-deadline', env: 'CRYO_LEADER_ELECTION_RENEW_DEADLINE', default: 10, parse: parseDurationAtLeast(0.1), format: formatDuration,
    description: 'The leader stops acting when it could not renew the Lease for this long; shorter than the lease duration.',
  } satisfies OptionSpec<number>,
  retryPeriodSeconds: {
    flag: '--leader-election-retry-period', env: 'CRYO_LEADER_ELECTION_RETRY_PERIOD', default: 2, parse: parseDurationAtLeast(0.05), format: formatDuration,
    description: 'How often the leader renews the Lease and the others try to acquire it.',
  } satisfies OptionSpec<number>,
  pollIntervalSeconds: {
    flag: '--poll-interval', env: 'CRYO_POLL_INTERVAL', default: 1, parse: parseDurationAtLeast(0.05), format: formatDuration,
    description: 'How often a Migration waiting for a pod or a node looks again (Migrations and Checkpoints are watched).',
  } satisfies OptionSpec<number>,
  checkpointTimeoutSeconds: {
    flag: '--checkpoint-timeout', env: 'CRYO_CHECKPOINT_TIMEOUT', default: 600, parse: parseDurationAtLeast(1), format: formatDuration,
    description: 'A Migration whose Checkpoint has not succeeded this long after it was created fails; the source keeps running.',
  } satisfies OptionSpec<number>,
  evictionTimeoutSeconds: {
    flag: '--eviction-timeout', env: 'CRYO_EVICTION_TIMEOUT', default: 600, parse: parseDurationAtLeast(1), format: formatDuration,
    description: 'How long evicting the source is retried while a PodDisruptionBudget refuses it (429); then the Migration fails and the source keeps running.',
  } satisfies OptionSpec<number>,
  restoreTimeoutSeconds: {
    flag: '--restore-timeout', env: 'CRYO_RESTORE_TIMEOUT', default: 600, parse: parseDurationAtLeast(1), format: formatDuration,
    description: 'How long the pod that carries on may take to run Ready once the restore starts; then the Migration fails (the pod is left as it is).',
  } satisfies OptionSpec<number>,
  nodeWaitTimeoutSeconds: {
    flag: '--node-wait-timeout', env: 'CRYO_NODE_WAIT_TIMEOUT', default: 0, defaultText: '0 (no limit)', parse: parseDurationSeconds, format: formatDuration,
    description: 'restartInPlace: how long to wait for the source node to be Ready and schedulable again (kubectl cryo uncordon); 0 waits as long as it takes.',
  } satisfies OptionSpec<number>,
  maxConcurrentMigrations: {
    flag: '--max-concurrent-migrations', env: 'CRYO_MAX_CONCURRENT_MIGRATIONS', default: 4, parse: parseInteger(1, 64),
    description: 'Migrations whose next step runs at once (each step is short: a few API calls); any number wait meanwhile.',
  } satisfies OptionSpec<number>,
  port: {
    flag: '--port', env: 'CRYO_PORT', default: 8080, parse: parseInteger(0, 65535),
    description: 'HTTP port serving /healthz, /readyz and /metrics (0 picks a free port).',
  } satisfies OptionSpec<number>,
  kubeconfig: sharedOptionSpecs.kubeconfig,
};

export type ControllerConfig = ReturnType<typeof readControllerConfig>;

export function readControllerConfig(argv: readonly string[] = process.argv.slice(2), env = process.env) {
  const config = readOptions(controllerOptionSpecs, argv, env);
  const { leaseDurationSeconds: lease, renewDeadlineSeconds: renew, retryPeriodSeconds: retry } = config;
  // A leader stops acting within the renew deadline of its last renewal; the others take over no
  // sooner than a lease duration after they saw it. So the deadline must end first.
  if (renew >= lease) {
    throw new OptionError(`--leader-election-renew-deadline (${formatDuration(renew)}) must be shorter than --leader-election-lease-duration (${formatDuration(lease)}), or two replicas could act at once`);
  }
  if (renew <= RETRY_JITTER * retry) {
    throw new OptionError(`--leader-election-renew-deadline (${formatDuration(renew)}) must be longer than ${RETRY_JITTER} × --leader-election-retry-period (${formatDuration(retry)}), or one slow renewal loses the lease`);
  }
  return config;
}
