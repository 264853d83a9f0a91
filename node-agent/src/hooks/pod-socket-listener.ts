/**
 * One pod's hook socket: `<hostHooksDir>/<pod uid>/agent.sock`. Connections are handed to a
 * shared handler, tagged with the pod, so which socket a connection came through is what decides
 * the pod it belongs to. `pause()` stops accepting (connect() then fails at once) while keeping
 * the connections already made, for the window in which CRIU dumps.
 */
import { chmod, mkdir, rm, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { HOOK_SOCKET_NAME } from '@cryo/common';

export interface PodSocketOptions {
  hostHooksDir: string;
  podUid: string;
  /** Mode of the socket file: containers run as any uid, so the default lets all connect. */
  socketMode: number;
  dirMode: number;
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

  /** Creates the directory and listens; a stale socket file from an earlier agent is replaced. */
  async open(): Promise<void> {
    if (this.server !== null) return;
    await mkdir(this.dir, { recursive: true, mode: this.options.dirMode });
    await chmod(this.dir, this.options.dirMode);
    await unlink(this.socketPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    const server = net.createServer({ pauseOnConnect: false }, (socket) => this.options.onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // listen() creates the file with the umask's mode; set it explicitly.
    await chmod(this.socketPath, this.options.socketMode);
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

  /** Stops accepting and removes the pod's directory. */
  async remove(): Promise<void> {
    await this.pause();
    await rm(this.dir, { recursive: true, force: true });
  }
}
