/**
 * The node agent's configuration: flags and env vars with documented defaults
 * (README.md#node-agent-configuration lists the same table).
 */
import { OptionError, parseDurationSeconds, parseInteger, parseString, readOptions, sharedOptionSpecs, type OptionSpec } from '@cryo/common';

function parseFileMode(raw: string): number {
  if (!/^0?[0-7]{3}$/.test(raw)) throw new OptionError(`expected an octal file mode such as 0660, got "${raw}"`);
  return Number.parseInt(raw, 8);
}

export const nodeAgentOptionSpecs = {
  nodeName: {
    flag: '--node-name', env: 'NODE_NAME', default: '', parse: parseString,
    description: 'This node (downward API spec.nodeName); the agent serves only pods scheduled here. Required.',
  } satisfies OptionSpec<string>,
  hostHooksDir: sharedOptionSpecs.hostHooksDir,
  hookSocketMode: {
    flag: '--hook-socket-mode', env: 'CRYO_HOOK_SOCKET_MODE', default: 0o666, defaultText: '0666', parse: parseFileMode,
    description: 'Mode of each pod\'s agent.sock. Containers run as any uid; only the pod itself mounts its directory.',
  } satisfies OptionSpec<number>,
  hookHeartbeatSeconds: {
    flag: '--hook-heartbeat-interval', env: 'CRYO_HOOK_HEARTBEAT_INTERVAL', default: 10, defaultText: '10s', parse: parseDurationSeconds,
    description: 'How often the agent pings each connected process; two missed intervals close the connection.',
  } satisfies OptionSpec<number>,
  port: {
    flag: '--port', env: 'CRYO_PORT', default: 8081, parse: parseInteger(0, 65535),
    description: 'HTTP port serving /healthz, /readyz and /metrics (0 picks a free port).',
  } satisfies OptionSpec<number>,
  kubeconfig: sharedOptionSpecs.kubeconfig,
};

export type NodeAgentConfig = ReturnType<typeof readNodeAgentConfig>;

export function readNodeAgentConfig(argv: readonly string[] = process.argv.slice(2), env = process.env) {
  const config = readOptions(nodeAgentOptionSpecs, argv, env);
  if (config.nodeName === '') {
    throw new OptionError('--node-name (NODE_NAME) is required: set it from the downward API field spec.nodeName');
  }
  return config;
}
