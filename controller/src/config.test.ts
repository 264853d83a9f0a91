import { describe, expect, it } from 'vitest';
import { describeOptions } from '@cryo/common';
import { itKeepsItsFlagsTrue } from '@cryo/test';
import { controllerOptionSpecs, readControllerConfig } from './config.ts';

describe('readControllerConfig', () => {
  it('runs with its defaults: the Lease cryo-controller in cryo-system, 15 s lease, 10 s renew deadline, 2 s retries', () => {
    expect(readControllerConfig([], {})).toMatchObject({
      namespace: 'cryo-system',
      leaseName: 'cryo-controller',
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
      pollIntervalSeconds: 1,
      checkpointTimeoutSeconds: 600,
      evictionTimeoutSeconds: 600,
      restoreTimeoutSeconds: 600,
      nodeWaitTimeoutSeconds: 0,
      maxConcurrentMigrations: 4,
      port: 8080,
    });
  });

  it('takes its namespace and identity from the downward API env vars, flags over env', () => {
    const config = readControllerConfig(['--leader-election-identity', 'from-flag'], { POD_NAMESPACE: 'ops', POD_NAME: 'cryo-controller-abc' });
    expect(config.namespace).toBe('ops');
    expect(config.leaderElectionIdentity).toBe('from-flag');
    expect(readControllerConfig([], { CRYO_EVICTION_TIMEOUT: '30m' }).evictionTimeoutSeconds).toBe(1800);
  });

  it('refuses a renew deadline that is not shorter than the lease duration: two replicas could act at once', () => {
    expect(() => readControllerConfig(['--leader-election-lease-duration', '10s', '--leader-election-renew-deadline', '10s'], {})).toThrow(
      '--leader-election-renew-deadline (10s) must be shorter than --leader-election-lease-duration (10s), or two replicas could act at once',
    );
  });

  it('refuses a renew deadline within 1.2 retry periods: one slow renewal would lose the lease', () => {
    expect(() => readControllerConfig(['--leader-election-renew-deadline', '2s', '--leader-election-retry-period', '2s'], {})).toThrow(
      /--leader-election-renew-deadline \(2s\) must be longer than 1.2 × --leader-election-retry-period \(2s\)/,
    );
  });

  it('refuses durations that are no durations or too short, naming the flag and its env var', () => {
    expect(() => readControllerConfig(['--poll-interval', 'often'], {})).toThrow('--poll-interval (env CRYO_POLL_INTERVAL): expected a duration such as 30s, 10m, 24h or 7d, got "often"');
    expect(() => readControllerConfig(['--restore-timeout', '0'], {})).toThrow('--restore-timeout (env CRYO_RESTORE_TIMEOUT): expected at least 1s, got "0"');
    expect(() => readControllerConfig(['--max-concurrent-migrations', '0'], {})).toThrow(/--max-concurrent-migrations.*from 1 to 64/);
  });

  it('documents every flag with its env var and default in --help', () => {
    const help = describeOptions(controllerOptionSpecs);
    expect(help).toContain('--leader-election-lease-duration <value>   env CRYO_LEADER_ELECTION_LEASE_DURATION, default 15s');
    expect(help).toContain('--node-wait-timeout <value>   env CRYO_NODE_WAIT_TIMEOUT, default 0 (no limit)');
    expect(help).toContain('--leader-election-identity <value>   env POD_NAME, default (the host name)');
  });
});

describe("the controller's flags", () => {
  itKeepsItsFlagsTrue({ specs: controllerOptionSpecs, table: ['docs/migration.md', '## Controller configuration'], sources: 'controller/src', except: ['config.ts'] });
});
