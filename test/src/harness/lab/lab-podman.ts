/**
 * Podman in the CRIU lab (docs/lab.md): the Debian 13 root's podman + crun + CRIU 4.2, configured
 * the way they work on this kind of host (cgroupfs, file events, crun, overlay storage, the local
 * registry insecure), a tiny base image, and containers that run the repository's Node 24:
 *
 *   const podman = await openLabPodman(lab);
 *   const pod = await podman.createPod('app-a');          // a lab pod (netns on the bridge) as a Podman pod
 *   await podman.run({ name: 'app', pod, argv: [podman.nodeBinary, script] });
 *   await podHttp(pod.ip, 8080, 'GET', '/');               // the test reaches it at the pod's address
 *   await podman.restore({ name: 'copy', pod: other, archive });   // podman container restore --import
 *   await podman.close();                                   // before lab.close()
 *
 * The base image holds busybox and the Node binary's libraries (trixie's glibc) only; every
 * container gets the repository checkout read-only at its own path, so `nodeBinary` and the
 * repo's scripts and node_modules resolve as on the host. A checkpoint records that bind mount
 * and a restore makes it again. Containers are in a Podman pod whose network namespace is a lab
 * pod's (`podman pod create --network ns:<path>`; a copy restored with `--pod` into another such
 * pod gets that pod's network), or in `--network none`. Like every lab container, they get a
 * seccomp profile that blocks io_uring: CRIU cannot dump an io_uring, and Node 24 makes one.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { criuLogTail } from './criu-log.ts';
import { killAndRemoveCgroups, treeOf } from './lab-cgroups.ts';
import type { HostBindMount } from './lab-container.ts';
import type { LabPod } from './lab-pod.ts';
import { BLOCK_IO_URING } from './oci-spec.ts';
import type { Lab } from './open-lab.ts';
import type { CommandOptions, CommandResult } from './run-command.ts';
import { runCommand } from './run-command.ts';

/** Bump when the recipe changes: an image of another recipe keeps its own tag. */
export const LAB_BASE_IMAGE = 'localhost/cryo-lab/node-base:1';

/**
 * The JVM's image: the lab root's OpenJDK 21 JRE (scripts/lib/jvm-rootfs.sh), made by jvmImage().
 * Bump with the recipe.
 */
export const LAB_JVM_IMAGE = 'localhost/cryo-lab/jvm-base:1';

/** Where that image has its `java`. */
export const LAB_JAVA = '/usr/lib/jvm/java-21-openjdk-amd64/bin/java';

/** Registries Podman, Buildah and Skopeo in the lab reach over plain http. */
export const DEFAULT_INSECURE_REGISTRIES = ['127.0.0.1:5000', 'localhost:5000'];

export interface OpenLabPodmanOptions {
  insecureRegistries?: string[];
}

export interface PodmanPod {
  /** The Podman pod's name, also the lab pod's. */
  name: string;
  /** The pod's address on the lab bridge: the host reaches its servers there. */
  ip: string;
  labPod: LabPod;
  remove(): Promise<void>;
}

export interface PodmanContainer {
  name: string;
  id: string;
  /** Host pid of the container's first process (0 when not running). */
  pid(): Promise<number>;
  /** `podman logs` (stdout and stderr). */
  logs(): Promise<string>;
  remove(): Promise<void>;
}

export interface PodmanRunOptions {
  /** A container of this name a crashed run left is removed first. */
  name: string;
  /** The Podman pod to run in; `--network none` when absent. */
  pod?: PodmanPod;
  argv: string[];
  env?: Record<string, string>;
  workdir?: string;
  /** Host paths bind-mounted besides the repository (read-only). */
  mounts?: HostBindMount[];
  image?: string;
  /** Let the container use io_uring (then CRIU cannot dump a Node process). */
  allowIoUring?: boolean;
}

export interface PodmanRestoreOptions {
  name: string;
  /** Restore into this pod (its network namespace); the checkpointed container must have been in a pod. */
  pod?: PodmanPod;
  /** `--import <archive>` (a host path), or a checkpoint image already in local storage. */
  from: { archive: string } | { image: string };
}

/**
 * A directory whose contents a restore can swap: Podman cannot give a restored copy new bind
 * mount sources, but a container's source can itself be a mount point in the lab namespace,
 * bound to another directory before each restore (how each copy gets its own hook socket
 * directory). CRIU does not follow symlinks here, hence a bind mount.
 */
export interface MountSlot {
  /** The host path to use as a mount source. */
  path: string;
  /** Binds `source` (a host directory) at the slot, replacing what was bound before. */
  bind(source: string): Promise<void>;
}

export interface LabPodman {
  lab: Lab;
  /** The argv prefix that runs Podman inside the lab: what local mode's `podmanArgv` takes. */
  podmanArgv: string[];
  /** The path Podman sees for a host path: what local mode's `podmanPath` takes. */
  podmanPath: (path: string) => string;
  baseImage: string;
  /**
   * LAB_JVM_IMAGE, made the first time it is asked for (seconds; it stays in the lab's storage).
   * Run its LAB_JAVA with classes from the repository (mounted at its own path, as for Node).
   */
  jvmImage(): Promise<string>;
  /** The repository's Node 24 (inside containers at the same path). */
  nodeBinary: string;
  /** Runs `podman <args>` in the lab. */
  podman(args: string[], options?: CommandOptions): Promise<CommandResult>;
  /** Like podman(), but a non-zero exit throws with podman's stderr. */
  podmanOk(args: string[], options?: CommandOptions): Promise<CommandResult>;
  /** Runs `<tool> <args>` in the lab (skopeo, buildah, ...). */
  exec(argv: string[], options?: CommandOptions): Promise<CommandResult>;
  createPod(name: string): Promise<PodmanPod>;
  run(options: PodmanRunOptions): Promise<PodmanContainer>;
  /** `podman pull` over plain http (the lab registry); close() removes the image again. Returns the pull's duration. */
  pull(reference: string): Promise<number>;
  /** `podman container restore`; on failure the error has the end of CRIU's restore.log. */
  restore(options: PodmanRestoreOptions): Promise<{ container: PodmanContainer; durationMs: number }>;
  slot(name: string): Promise<MountSlot>;
  /** Versions of podman, crun and criu in the lab. */
  versions(): Promise<{ podman: string; crun: string; criu: string }>;
  /** Removes every container, pod, slot and pulled image this object made (the lab and the base image stay). */
  close(): Promise<void>;
}

const CONTAINERS_CONF = `# Written by Cryo's test harness (test/src/harness/lab/lab-podman.ts).
# No systemd in the lab: cgroupfs and file events; crun, the runtime CRI-O uses here.
[containers]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
`;

const STORAGE_CONF = `# Written by Cryo's test harness (test/src/harness/lab/lab-podman.ts).
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
`;

function registriesConf(registries: string[]): string {
  return `# Written by Cryo's test harness (test/src/harness/lab/lab-podman.ts): the lab's local registries speak plain http.\n${registries
    .map((r) => `[[registry]]\nlocation = "${r}"\ninsecure = true\n`)
    .join('\n')}`;
}

/** Writes `path` atomically when it is missing (`always`: or when its content differs). */
async function ensureFile(path: string, content: string, always: boolean): Promise<void> {
  if (existsSync(path)) {
    if (!always) return;
    if ((await readFile(path, 'utf8')) === content) return;
  }
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}

// The base image's recipe, run inside the lab: busybox and the libraries the Node binary links.
const BASE_IMAGE_SCRIPT = `
set -eu
image=$1 node=$2
d=$(mktemp -d /tmp/cryo-node-base.XXXXXX)
trap 'rm -rf "$d" "$d.tar"' EXIT
mkdir -p "$d/bin" "$d/lib64" "$d/tmp" "$d/proc" "$d/sys" "$d/dev" "$d/etc" "$d/root" "$d/run" "$d/app"
cp /usr/bin/busybox "$d/bin/busybox"
for a in sh cat echo sleep ls ps date wget; do ln -s busybox "$d/bin/$a"; done
for lib in $(ldd "$node" | awk '/=>/ { print $3 }'); do
  mkdir -p "$d$(dirname "$lib")"; cp -L "$lib" "$d$lib"
done
cp -L /lib64/ld-linux-x86-64.so.2 "$d/lib64/"
echo 'root:x:0:0:root:/root:/bin/sh' > "$d/etc/passwd"; echo 'root:x:0:' > "$d/etc/group"; chmod 1777 "$d/tmp"
tar -C "$d" -cf "$d.tar" .
podman import --change 'CMD ["/bin/sh"]' "$d.tar" "$image" >/dev/null
`;

// The JVM image's recipe, run inside the lab: the root's JRE as scripts/lib/jvm-rootfs.sh lays it out.
const JVM_IMAGE_SCRIPT = `
set -eu
image=$1 script=$2
d=$(mktemp -d /tmp/cryo-jvm-base.XXXXXX)
trap 'rm -rf "$d" "$d.tar"' EXIT
bash "$script" / "$d/root"
tar -C "$d/root" -cf "$d.tar" .
podman import --change 'ENV PATH=/usr/lib/jvm/java-21-openjdk-amd64/bin:/bin' --change 'CMD ["/bin/sh"]' "$d.tar" "$image" >/dev/null
`;

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * Removes the cgroups Podman (cgroupfs) and CRIU's restore leave under libpod_parent for these
 * container and pod ids, killing what still runs in them: a container whose record another Podman
 * user removed from the shared storage is not stopped by `podman rm`, and CRIU makes cgroup2
 * directories of a restored container that Podman does not manage.
 */
async function clearCgroupsOf(ids: string[], timeoutMs = 5_000): Promise<void> {
  if (ids.length === 0) return;
  const ours = async (): Promise<string[]> => {
    const hierarchies = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
    const dirs: string[] = [];
    for (const top of [CGROUP_ROOT, ...hierarchies.map((h) => join(CGROUP_ROOT, h))]) {
      const parent = join(top, 'libpod_parent');
      if (existsSync(parent)) dirs.push(...(await treeOf(parent)).filter((dir) => ids.some((id) => dir.includes(id))));
    }
    return dirs;
  };
  await killAndRemoveCgroups(ours, timeoutMs);
}

/** What CRIU said, when podman's message points at a CRIU log inside the lab root. */
async function criuLogOf(lab: Lab, stderr: string): Promise<string> {
  const match = /CRIU logfile `([^`]+)`/.exec(stderr) ?? /(\/var\/lib\/containers\/\S+\/(?:restore|dump)\.log)/.exec(stderr);
  if (match === null) return '';
  return `\nCRIU log ${match[1]}:\n${await criuLogTail(join(lab.settings.labDir, 'root', match[1]), 25)}`;
}

function describeFailure(args: string[], result: CommandResult): string {
  return `podman ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`;
}

export async function openLabPodman(lab: Lab, options: OpenLabPodmanOptions = {}): Promise<LabPodman> {
  const root = join(lab.settings.labDir, 'root');
  await ensureFile(join(root, 'etc/containers/containers.conf.d/50-cryo-lab.conf'), CONTAINERS_CONF, true);
  await ensureFile(join(root, 'etc/containers/storage.conf'), STORAGE_CONF, false);
  await ensureFile(join(root, 'etc/containers/registries.conf.d/50-cryo-lab.conf'), registriesConf(options.insecureRegistries ?? DEFAULT_INSECURE_REGISTRIES), true);

  const podmanEnv = ['PODMAN_IGNORE_CGROUPSV1_WARNING=1'];
  const podmanArgv = ['nsenter', `--mount=${lab.settings.nsPath}`, '--', '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', ...podmanEnv, 'podman'];
  const podman = (args: string[], opts: CommandOptions = {}) => runCommand([...podmanArgv, ...args], { timeoutMs: 120_000, ...opts });
  const podmanOk = async (args: string[], opts: CommandOptions = {}) => {
    const result = await podman(args, opts);
    if (result.code !== 0) throw new Error(describeFailure(args, result));
    return result;
  };

  const workDir = join(lab.settings.workDir, 'podman');
  await mkdir(workDir, { recursive: true });
  const seccompFile = join(workDir, 'seccomp-no-io-uring.json');
  await ensureFile(seccompFile, `${JSON.stringify(BLOCK_IO_URING, null, 2)}\n`, true);

  if ((await podman(['image', 'exists', LAB_BASE_IMAGE])).code !== 0) {
    const made = await lab.exec(['sh', '-c', BASE_IMAGE_SCRIPT, 'sh', LAB_BASE_IMAGE, lab.hostPath(lab.nodeBinary)], { timeoutMs: 120_000, env: { PODMAN_IGNORE_CGROUPSV1_WARNING: '1' } });
    if (made.code !== 0 && (await podman(['image', 'exists', LAB_BASE_IMAGE])).code !== 0) {
      throw new Error(`cannot build the lab's Podman base image ${LAB_BASE_IMAGE}: ${made.stderr}${made.stdout}`);
    }
  }

  // The repository, and the Node binary's directory when it lives elsewhere, read-only at their own paths.
  const repo = lab.settings.repoRoot;
  const defaultMounts = relative(repo, lab.nodeBinary).startsWith('..') ? [repo, dirname(lab.nodeBinary)] : [repo];

  const containers = new Map<string, PodmanContainer>();
  const pods = new Map<string, PodmanPod>();
  const slots = new Map<string, string>();
  const pulled = new Set<string>();
  const removedIds: string[] = [];

  const makeContainer = (name: string, id: string): PodmanContainer => {
    let removed = false;
    const container: PodmanContainer = {
      name,
      id,
      pid: async () => Number((await podman(['container', 'inspect', '--format', '{{.State.Pid}}', id])).stdout.trim()) || 0,
      logs: async () => {
        const result = await podman(['logs', id]);
        return `${result.stdout}${result.stderr}`;
      },
      remove: async () => {
        if (removed) return;
        removed = true;
        await podman(['rm', '-f', '-t', '0', id]);
        containers.delete(name);
        removedIds.push(id);
      },
    };
    containers.set(name, container);
    return container;
  };

  const podmanPath = (path: string) => lab.hostPath(path);

  return {
    lab,
    podmanArgv,
    podmanPath,
    baseImage: LAB_BASE_IMAGE,
    jvmImage: async () => {
      if ((await podman(['image', 'exists', LAB_JVM_IMAGE])).code === 0) return LAB_JVM_IMAGE;
      const script = lab.hostPath(join(repo, 'scripts/lib/jvm-rootfs.sh'));
      const made = await lab.exec(['bash', '-c', JVM_IMAGE_SCRIPT, 'bash', LAB_JVM_IMAGE, script], { timeoutMs: 300_000, env: { PODMAN_IGNORE_CGROUPSV1_WARNING: '1' } });
      if (made.code !== 0 && (await podman(['image', 'exists', LAB_JVM_IMAGE])).code !== 0) {
        throw new Error(`cannot build the lab's JVM image ${LAB_JVM_IMAGE}: ${made.stderr}${made.stdout}`);
      }
      return LAB_JVM_IMAGE;
    },
    nodeBinary: lab.nodeBinary,
    podman,
    podmanOk,
    exec: (argv, opts) => lab.exec(argv, { timeoutMs: 120_000, ...opts, env: { PODMAN_IGNORE_CGROUPSV1_WARNING: '1' } }),

    createPod: async (name) => {
      await podman(['pod', 'rm', '-f', '-t', '0', name]); // a crashed run's pod of this name
      const labPod = await lab.createPod(name);
      let podId: string;
      try {
        podId = (await podmanOk(['pod', 'create', '--name', name, '--network', `ns:${labPod.netnsPath}`])).stdout.trim();
      } catch (error) {
        await labPod.remove();
        throw error;
      }
      let removed = false;
      const pod: PodmanPod = {
        name,
        ip: labPod.ip,
        labPod,
        remove: async () => {
          if (removed) return;
          removed = true;
          await podman(['pod', 'rm', '-f', '-t', '0', name]);
          removedIds.push(podId);
          await labPod.remove();
          pods.delete(name);
        },
      };
      pods.set(name, pod);
      return pod;
    },

    run: async (opts) => {
      await podman(['rm', '-f', '-t', '0', opts.name]);
      const mounts = [...defaultMounts.map((dir) => ({ source: dir, destination: dir, readonly: true })), ...(opts.mounts ?? [])];
      const args = [
        'run', '-d', '--name', opts.name,
        ...(opts.pod ? ['--pod', opts.pod.name] : ['--network', 'none']),
        ...(opts.allowIoUring ? [] : ['--security-opt', `seccomp=${lab.hostPath(seccompFile)}`]),
        ...mounts.flatMap((m) => ['-v', `${lab.hostPath(m.source)}:${m.destination}:${m.readonly ? 'ro' : 'rw'}`]),
        ...Object.entries(opts.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
        ...(opts.workdir ? ['--workdir', opts.workdir] : []),
        opts.image ?? LAB_BASE_IMAGE,
        ...opts.argv,
      ];
      const id = (await podmanOk(args)).stdout.trim().split('\n').at(-1)!;
      return makeContainer(opts.name, id);
    },

    pull: async (reference) => {
      pulled.add(reference);
      const start = performance.now();
      await podmanOk(['pull', '--quiet', '--tls-verify=false', reference]);
      return performance.now() - start;
    },

    restore: async ({ name, pod, from }) => {
      await podman(['rm', '-f', '-t', '0', name]);
      const args = [
        'container', 'restore', '--name', name,
        ...(pod ? ['--pod', pod.name] : []),
        ...('archive' in from ? [`--import=${lab.hostPath(from.archive)}`] : [from.image]),
      ];
      const start = performance.now();
      const result = await podman(args);
      const durationMs = performance.now() - start;
      if (result.code !== 0) {
        await podman(['rm', '-f', '-t', '0', name]);
        throw new Error(`${describeFailure(args, result)}${await criuLogOf(lab, result.stderr)}`);
      }
      const id = (await podmanOk(['container', 'inspect', '--format', '{{.Id}}', name])).stdout.trim();
      return { container: makeContainer(name, id), durationMs };
    },

    slot: async (name) => {
      const path = join(workDir, 'slots', name);
      await mkdir(path, { recursive: true });
      const inLab = lab.hostPath(path);
      const unbind = `while mountpoint -q "$1"; do umount "$1"; done`;
      await lab.exec(['sh', '-c', unbind, 'sh', inLab]);
      slots.set(name, inLab);
      return {
        path,
        bind: async (source) => {
          const result = await lab.exec(['sh', '-ec', `${unbind}\nmount --bind "$2" "$1"`, 'sh', inLab, lab.hostPath(source)]);
          if (result.code !== 0) throw new Error(`cannot bind ${source} at ${path}: ${result.stderr}`);
        },
      };
    },

    versions: async () => {
      const first = async (argv: string[]) => ((await lab.exec(argv)).stdout.split('\n')[0] ?? '').trim();
      return { podman: await first(['podman', '--version']), crun: await first(['crun', '--version']), criu: await first(['criu', '--version']) };
    },

    close: async () => {
      // Containers first (a pod's infra container outlives its others), each group at once.
      const errors: unknown[] = [];
      for (const group of [[...containers.values()], [...pods.values()]]) {
        const results = await Promise.allSettled(group.map((item) => item.remove()));
        errors.push(...results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown));
      }
      for (const inLab of slots.values()) {
        await lab.exec(['sh', '-c', 'while mountpoint -q "$1"; do umount "$1"; done', 'sh', inLab]);
      }
      slots.clear();
      for (const reference of pulled) await podman(['rmi', '-f', reference]);
      pulled.clear();
      await clearCgroupsOf(removedIds.splice(0));
      if (errors.length > 0) throw new AggregateError(errors, `LabPodman.close: ${errors.length} removal(s) failed: ${errors.map(String).join('; ')}`);
    },
  };
}
