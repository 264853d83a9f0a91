/** What the hook server counts and times; names carry the `cryo_` prefix from @cryo/common. */
import type { Metrics } from '@cryo/common';

export class HookMetrics {
  readonly sessions;
  readonly connections;
  readonly protocolErrors;
  readonly limitsExceeded;
  readonly prepareDuration;
  readonly prepareOverhead;

  constructor(metrics: Metrics) {
    this.sessions = metrics.gauge('hook_sessions', 'Processes connected to a hook socket on this node');
    this.connections = metrics.counter('hook_connections_total', 'Completed hook handshakes by answer', ['kind']);
    this.protocolErrors = metrics.counter('hook_protocol_errors_total', 'Connections refused or messages rejected, by error code', ['code']);
    this.limitsExceeded = metrics.counter('hook_limits_exceeded_total', 'Hook connections refused or closed for going past a limit, by limit', ['limit']);
    this.prepareDuration = metrics.histogram(
      'hook_prepare_duration_seconds',
      'From sending prepare to every addressed process ready and disconnected (or the first failure)',
      ['result'],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    this.prepareOverhead = metrics.histogram(
      'hook_prepare_overhead_seconds',
      "Prepare round trip beyond the hooks' own work, per process",
      [],
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    );
  }
}
