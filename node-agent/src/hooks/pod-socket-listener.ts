/**
 * One pod's hook socket: `<hostHooksDir>/<pod uid>/agent.sock`. Connections are handed to a
 * shared handler, tagged with the pod, so which socket a connection came through is what decides
 * the pod it belongs to. `pause()` stops accepting (connect() then fails at once) while keeping
 * the connections already made, for the window in which CRIU dumps.
 *
 * The pod mounts `<pod uid>` read-write (subPathExpr), so any name inside it can be swapped for a
 * symlink at any moment; the hooks directory itself only the agent (and the kubelet, making the
 * subPath directory) writes: pods never mount it. So:
 *   - `<pod uid>` is made with mkdir, which never follows an existing name, and its mode is set
 *     through a descriptor opened with O_NOFOLLOW | O_DIRECTORY (a symlink there is refused, not
 *     followed); its name lives in the hooks directory, out of the pod's reach.
 *   - The socket is bound in an agent-only scratch directory (agent-scratch.ts: 0700, same
 *     filesystem), its mode set there, where nothing can swap it, and then rename()d to
 *     `<pod uid>/agent.sock`. rename replaces whatever name is there, a symlink included, and
 *     follows none. No chmod, or anything else that follows, ever touches a path inside the pod's
 *     directory.
 *   - unlink(`<pod uid>/agent.sock`) when pausing removes that name only (unlink never follows).
 *   - Removal goes through untrusted-tree.ts, which follows nothing the pod made.
 */
import { constants } from 'node:fs';
import { chmod, mkdir, open, rename, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { HOOK_SOCKET_NAME } from '@cryo/common';
import { createScratchDir } from '../host-files/agent-scratch.ts';
import { removeOwnScratchDir, removeUntrustedTree, type TreeRemoval } from '../host-files/untrusted-tree.ts';

export interface PodSocketOptions {
  hostHooksDir: string;
  podUid: string;
  /** Mode of the socket file: containers run as any uid, so the default lets all connect. */
  socketMode: number;
  dirMode: number;
  /** Budget of one removal of the directory (untrusted-tree.ts); the default when absent. */
  removalMaxOperations?: number;
  onConnection: (socket: net.Socket) => void;
}

export class PodSocketListener {
  readonly dir: string;
  readonly socketPath: string;
  private server: net.Server | null = null;
  private readonly options: PodSocketOptions;

  constructor(options: PodSocketOptions) {
    this.options = options;
    this.dir = path.join(options.hostHooksDir, options.podUid);
    this.socketPath = path.join(this.dir, HOOK_SOCKET_NAME);
  }

  get listening(): boolean {
    return this.server !== null;
  }

  /** Creates the directory and listens; whatever is at agent.sock (a stale socket, or anything the pod put there) is replaced. */
  async open(): Promise<void> {
    if (this.server !== null) return;
    await makePodDirectory(this.dir, this.options.dirMode);
    const server = net.createServer({ pauseOnConnect: false }, (socket) => this.options.onConnection(socket));
    const staging = await createScratchDir(this.options.hostHooksDir);
    try {
      // Named after the pod: closing a server unlinks the path it was bound at (libuv does), which
      // by then is gone, and this name is no other socket's.
      const staged = path.join(staging, `${this.options.podUid}.sock`);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(staged, () => {
          server.off('error', reject);
          resolve();
        });
      });
      try {
        // listen() creates the file with the umask's mode; set it here, where only the agent can reach it.
        await chmod(staged, this.options.socketMode);
        await this.moveIntoPlace(staged);
      } catch (error) {
        server.close();
        throw error;
      }
    } finally {
      // Empty on success; on failure it may hold the staged socket. Removed either way.
      await removeOwnScratchDir(staging);
    }
    this.server = server;
  }

  /** Stops accepting; established connections stay. */
  async pause(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    // close() stops accepting at once; its callback would wait for every connection to end.
    server.close();
    await unlink(this.socketPath).catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Stops accepting and removes the pod's directory, following nothing the pod put in it. */
  async remove(): Promise<TreeRemoval> {
    await this.pause();
    return removeUntrustedTree(this.dir, { scratchParent: this.options.hostHooksDir, ...(this.options.removalMaxOperations !== undefined ? { maxOperations: this.options.removalMaxOperations } : {}) });
  }

  private async moveIntoPlace(staged: string): Promise<void> {
    try {
      await rename(staged, this.socketPath);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
    // The pod made agent.sock a directory: move it out of the way, following nothing in it, and retry once.
    const removal = await removeUntrustedTree(this.socketPath, { scratchParent: this.options.hostHooksDir });
    if (!removal.removed && removal.leftIn === undefined) throw new Error(`cannot replace ${this.socketPath}: ${removal.reason ?? 'unknown'}`);
    await rename(staged, this.socketPath);
  }
}

/**
 * mkdir `dir` (never follows an existing name: it fails with EEXIST), then sets its mode through a
 * descriptor opened without following a symlink, so the mode lands on a real directory or nowhere.
 */
export async function makePodDirectory(dir: string, mode: number): Promise<void> {
  // The hooks directory: the administrator's, never a pod's (made here when a caller did not sync() first).
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
  await mkdir(dir, { mode }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  let handle;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'ELOOP') throw new Error(`${dir} is not a directory (a symbolic link or a file is in its place); the agent does not use it`, { cause: error });
    throw error;
  }
  try {
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}
