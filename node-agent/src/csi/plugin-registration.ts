/**
 * Registers the CSI driver with the kubelet, as node-driver-registrar does, without another
 * container: a socket `<plugins_registry>/<driver>-reg.sock` serving the kubelet's plugin
 * registration API v1 (plugin-registration.proto). The kubelet watches that directory, calls
 * GetInfo (type CSIPlugin, the driver's name, its CSI endpoint as a path on the node, the CSI
 * versions), registers the driver (it calls NodeGetInfo on the endpoint and records the node in
 * the CSINode object), then reports with NotifyRegistrationStatus. Removing the socket
 * unregisters the driver.
 */
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '@cryo/common';
import { bindUnixSocket, CSI_VERSION, loadProto, serviceOf } from './hook-csi-driver.ts';

export const REGISTRATION_PROTO = fileURLToPath(new URL('./plugin-registration.proto', import.meta.url));

export interface PluginRegistrationOptions {
  driverName: string;
  /** The CSI socket as the kubelet sees it on the node (the agent mounts it at the same path). */
  endpoint: string;
  /** The kubelet's plugins_registry directory. */
  registrationDir: string;
  logger: Logger;
}

export interface RegistrationStatus {
  registered: boolean;
  error: string;
}

export class PluginRegistration {
  private readonly options: PluginRegistrationOptions;
  private server: grpc.Server | null = null;
  /** The kubelet's last word, if it spoke. */
  lastStatus: RegistrationStatus | undefined;

  constructor(options: PluginRegistrationOptions) {
    this.options = options;
  }

  get socketPath(): string {
    return path.join(this.options.registrationDir, `${this.options.driverName}-reg.sock`);
  }

  async listen(): Promise<void> {
    const root = loadProto(REGISTRATION_PROTO);
    const server = new grpc.Server();
    server.addService(serviceOf(root, 'pluginregistration.Registration').service, {
      GetInfo: (_call: unknown, callback: grpc.sendUnaryData<object>) =>
        callback(null, { type: 'CSIPlugin', name: this.options.driverName, endpoint: this.options.endpoint, supportedVersions: [CSI_VERSION] }),
      NotifyRegistrationStatus: (call: grpc.ServerUnaryCall<{ pluginRegistered: boolean; error: string }, object>, callback: grpc.sendUnaryData<object>) => {
        this.lastStatus = { registered: call.request.pluginRegistered, error: call.request.error };
        if (call.request.pluginRegistered) this.options.logger.info({ driver: this.options.driverName }, 'the kubelet registered the CSI driver');
        else this.options.logger.error({ driver: this.options.driverName, err: call.request.error }, 'the kubelet refused to register the CSI driver');
        callback(null, {});
      },
    });
    await bindUnixSocket(server, this.socketPath);
    this.server = server;
    this.options.logger.info({ socket: this.socketPath, endpoint: this.options.endpoint }, 'plugin registration socket open');
  }

  /** Stops serving and removes the socket, which unregisters the driver. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await unlink(this.socketPath).catch(() => {});
  }
}
