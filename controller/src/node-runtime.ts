/**
 * How Node runs the controller: the image's ENTRYPOINT and ENV (controller/Dockerfile, checked
 * against these by test/manifests), the same settings as the node agent's (node-agent/src/node-runtime.ts).
 *
 * Measured (a controller process against the fake kube-apiserver, 200 finished Migrations cached,
 * then 80–150 Migrations carried out one after another): with Node's defaults its RSS grew from
 * 160 to 360–390 MiB, every bit of it garbage V8 had not collected yet (a full GC took the heap
 * back from 130 to 37 MiB). A 1 MiB semi-space and two malloc arenas hold it at 143 MiB idle and
 * 193–202 MiB after 100–150 Migrations, the heap at 40–55 MiB.
 */
export const CONTROLLER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
export const CONTROLLER_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
