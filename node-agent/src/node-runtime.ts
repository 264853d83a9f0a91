/**
 * How Node runs the agent: the image's ENTRYPOINT and ENV (node-agent/Dockerfile, checked against
 * these by test/manifests) and the benchmark's pushing process use the same settings.
 *
 * The agent's peak RSS is set while it loads, not while it streams archives (measured: an idle
 * agent process peaks as high as one pushing 2 GiB), and most of it is @kubernetes/client-node's
 * module graph. A 1 MiB semi-space keeps V8's young generation small during that load, and two
 * malloc arenas keep glibc from holding memory per thread: 162 → 135–139 MiB idle (npm run
 * bench:agent), with no measurable cost to pushing (the agent allocates little per byte it sends).
 */
export const NODE_AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
export const NODE_AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
