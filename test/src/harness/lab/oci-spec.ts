/**
 * The OCI runtime spec (config.json) of a lab container, shaped like the ones CRI-O hands crun:
 * own pid, mount, ipc and uts namespaces, the pod's network namespace joined by path, and bind
 * mounts for volumes. Only the fields the lab uses are typed.
 */

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

export interface OciNamespace {
  type: string;
  path?: string;
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    noNewPrivileges: boolean;
    capabilities: Record<'bounding' | 'effective' | 'permitted', string[]>;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    cgroupsPath: string;
    namespaces: OciNamespace[];
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: OciSeccomp;
  };
}

export interface OciSeccomp {
  defaultAction: string;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number }[];
}

/** A bind mount, with both paths as crun sees them (inside the lab namespace). */
export interface LabBindMount {
  source: string;
  destination: string;
  readonly?: boolean;
}

export interface SpecInput {
  id: string;
  hostname: string;
  /** The container's root filesystem inside the lab namespace. */
  rootfs: string;
  netnsPath: string;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  binds: LabBindMount[];
  /** Let the process use io_uring (CRIU cannot dump a process that has an io_uring). */
  allowIoUring?: boolean;
}

const CAPABILITIES = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETGID', 'CAP_SETUID'];

/**
 * Everything allowed but io_uring, which fails with EPERM, as in the RuntimeDefault seccomp
 * profiles of containerd 2 and Docker 25+. CRIU 4.1 cannot dump a process that maps an io_uring
 * ("Unknown shit 600 (anon_inode:[io_uring])"), and libuv >= 1.50 (Node 24) always sets one up
 * per event loop to batch epoll_ctl calls, whatever UV_USE_IO_URING says; denied, it falls back
 * to plain epoll_ctl.
 */
export const BLOCK_IO_URING: OciSeccomp = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [{ names: ['io_uring_setup', 'io_uring_enter', 'io_uring_register'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
};

/** Each container gets its own cgroup under cryo-lab/ (provision.sh cleanup removes what is left). */
export function cgroupsPathOf(id: string): string {
  return `/cryo-lab/${id}`;
}

export function bindMount({ source, destination, readonly }: LabBindMount): OciMount {
  return { destination, type: 'bind', source, options: ['rbind', readonly ? 'ro' : 'rw'] };
}

export function buildSpec(input: SpecInput): OciSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: input.argv,
      env: Object.entries({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...input.env }).map(([k, v]) => `${k}=${v}`),
      cwd: input.cwd,
      noNewPrivileges: true,
      capabilities: { bounding: CAPABILITIES, effective: CAPABILITIES, permitted: CAPABILITIES },
    },
    // Read-only: containers share the one trixie root. crun still creates missing mount points in
    // it (before making it read-only), so destinations appear there as empty directories.
    root: { path: input.rootfs, readonly: true },
    hostname: input.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      ...input.binds.map(bindMount),
    ],
    linux: {
      cgroupsPath: cgroupsPathOf(input.id),
      namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'network', path: input.netnsPath }],
      maskedPaths: ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      ...(input.allowIoUring ? {} : { seccomp: BLOCK_IO_URING }),
    },
  };
}

/**
 * The spec of a copy restored from a checkpoint of `spec`: a new cgroup, the new pod's network
 * namespace and new sources for the given bind mount destinations. CRIU restores exactly the
 * mounts it dumped, so a destination the checkpointed container did not have is an error here
 * (CRI-O refuses such a restore as well).
 */
export function retargetSpec(spec: OciSpec, { id, netnsPath, binds }: { id: string; netnsPath: string; binds: LabBindMount[] }): OciSpec {
  const copy = structuredClone(spec);
  copy.linux.cgroupsPath = cgroupsPathOf(id);
  copy.linux.namespaces = copy.linux.namespaces.map((ns) => (ns.type === 'network' ? { type: 'network', path: netnsPath } : ns));
  for (const bind of binds) {
    const index = copy.mounts.findIndex((m) => m.destination === bind.destination);
    if (index < 0 || copy.mounts[index].type !== 'bind') {
      const known = copy.mounts.filter((m) => m.type === 'bind').map((m) => m.destination);
      throw new Error(`the checkpointed container had no bind mount at ${bind.destination} (it had: ${known.join(', ') || 'none'})`);
    }
    copy.mounts[index] = bindMount(bind);
  }
  return copy;
}
