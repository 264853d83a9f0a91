/**
 * The directory store as a read-only registry: the part of the OCI distribution API a runtime
 * pulls with (`GET`/`HEAD` of `/v2/`, of `<name>/manifests/<digest>` and `<name>/blobs/<digest>`),
 * answered from the files the directory store wrote. The kubelet starts containers only from
 * images, so this is how a pod restores from a directory checkpoint: the node agent listens on
 * the node's loopback (`--directory-registry-address`, host network), the webhook points the
 * pod at `127.0.0.1:<port>/cryo-directory/<namespace>/<pod>/<container>@sha256:<manifest>`, and
 * the runtime pulls it from the agent on its own node like from any plain-HTTP registry.
 *
 * What it serves, and nothing else:
 *   - a manifest only by digest (no tags, no listing): the manifest text recorded in an archive's
 *     sidecar when it was stored, so the digest the Checkpoint names never changes;
 *   - the config blob from the same sidecar, and the archive file as the one layer blob, both
 *     only through a manifest of the same repository (directory).
 * Names are checked component by component (directory-layout.ts REPOSITORY_COMPONENT), so a
 * request never reaches outside the root; the archive is opened without following a symlink.
 * Who may pull: any process on the node's loopback, as with the archives themselves (root on the
 * node reads them anyway). Which pod may name which repository is the admission policy's job
 * (manifests/restore-image-policy.yaml: only its own namespace's).
 */
import { constants } from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '@cryo/common';
import { OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST, sha256Digest } from '../checkpoint-image/checkpoint-image.ts';
import { parseSidecar, REPOSITORY_COMPONENT, SIDECAR_SUFFIX, VIEW_REPOSITORY_PREFIX, type ArchiveSidecar } from './directory-layout.ts';

export interface DirectoryRegistryViewOptions {
  /** The root the image names are relative to: the node agent's --directory. */
  root: string;
  logger: Logger;
}

/** What a request names: `<repository>/manifests|blobs/<digest>` below /v2/. */
interface ContentRequest {
  components: string[];
  kind: 'manifests' | 'blobs';
  reference: string;
}

/** One archive as the view serves it. */
interface ServedImage {
  sidecar: ArchiveSidecar;
  archivePath: string;
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' };

export class DirectoryRegistryView {
  readonly root: string;
  readonly #logger: Logger;
  readonly #server: Server;

  constructor(options: DirectoryRegistryViewOptions) {
    this.root = path.resolve(options.root);
    this.#logger = options.logger.child({ part: 'directory-registry-view', root: this.root });
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#logger.error({ err, url: req.url }, 'registry view request failed');
        if (!res.headersSent) sendError(res, 500, 'UNKNOWN', 'the node agent could not read the directory store; see its log');
        else res.destroy();
      });
    });
  }

  /** Listens on `host:port` (port 0 picks one); resolves with where it listens. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address() as AddressInfo;
    this.#logger.info({ host: address.address, port: address.port }, 'serving the directory store as a read-only registry');
    return { host: address.address, port: address.port };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(res, 405, 'UNSUPPORTED', 'this registry is a read-only view of a checkpoint directory: only GET and HEAD', { allow: 'GET, HEAD' });
    }
    const urlPath = (req.url ?? '/').split('?')[0];
    if (urlPath === '/v2/' || urlPath === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', ...API_VERSION_HEADER }).end(req.method === 'HEAD' ? undefined : '{}');
      return;
    }
    const parsed = parseContentRequest(urlPath);
    if (typeof parsed === 'string') return sendError(res, 404, 'NAME_UNKNOWN', parsed);
    const images = await this.#imagesIn(parsed.components);
    const head = req.method === 'HEAD';
    if (parsed.kind === 'manifests') {
      const image = images.find((i) => i.manifestDigest === parsed.reference);
      if (image === undefined) return sendError(res, 404, 'MANIFEST_UNKNOWN', `no checkpoint image ${parsed.reference} in ${parsed.components.join('/')}`);
      this.#logger.info({ namespace: image.sidecar.namespace, checkpoint: image.sidecar.checkpointName, container: image.sidecar.containerName, manifest: image.manifestDigest, method: req.method }, 'serving a checkpoint image manifest');
      return sendBytes(res, image.manifest, OCI_MANIFEST, image.manifestDigest, head);
    }
    const configOf = images.find((i) => i.configDigest === parsed.reference);
    if (configOf !== undefined) return sendBytes(res, configOf.config, OCI_CONFIG, configOf.configDigest, head);
    const layerOf = images.find((i) => i.sidecar.digest === parsed.reference);
    if (layerOf === undefined) return sendError(res, 404, 'BLOB_UNKNOWN', `no blob ${parsed.reference} in ${parsed.components.join('/')}`);
    await this.#sendArchive(res, layerOf, head);
  }

  /** The served images of one container directory: sidecars with an image whose archive is there. */
  async #imagesIn(components: string[]): Promise<ServedImage[]> {
    const dir = path.join(this.root, ...components);
    const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
      throw err;
    });
    const present = new Set(names);
    const images: ServedImage[] = [];
    for (const name of names) {
      if (name.startsWith('.') || !name.endsWith(`.tar${SIDECAR_SUFFIX}`)) continue;
      const archiveName = name.slice(0, -SIDECAR_SUFFIX.length);
      if (!present.has(archiveName)) continue; // not committed yet, or being removed
      const sidecar = parseSidecar(await readFile(path.join(dir, name), 'utf8').catch(() => ''));
      if (typeof sidecar === 'string' || sidecar.image === undefined || sidecar.archive !== archiveName) continue;
      const manifest = Buffer.from(sidecar.image.manifest, 'utf8');
      const config = Buffer.from(sidecar.image.config, 'utf8');
      images.push({ sidecar, archivePath: path.join(dir, archiveName), manifest, manifestDigest: sha256Digest(manifest), config, configDigest: sha256Digest(config) });
    }
    return images;
  }

  async #sendArchive(res: ServerResponse, image: ServedImage, head: boolean): Promise<void> {
    // O_NOFOLLOW: the store writes regular files only; a symlink there was put by someone else.
    const handle = await open(image.archivePath, constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (handle === undefined) return sendError(res, 404, 'BLOB_UNKNOWN', `checkpoint archive ${image.sidecar.archive} was removed`);
    try {
      const { size } = await handle.stat();
      res.writeHead(200, { 'content-type': OCI_LAYER_TAR, 'content-length': size, 'docker-content-digest': image.sidecar.digest, ...API_VERSION_HEADER });
      if (head) {
        res.end();
        return;
      }
      this.#logger.info({ namespace: image.sidecar.namespace, checkpoint: image.sidecar.checkpointName, container: image.sidecar.containerName, sizeBytes: size }, 'serving a checkpoint archive as its image layer');
      await pipeline(handle.createReadStream({ autoClose: false }), res);
    } finally {
      await handle.close();
    }
  }
}

/** The repository components, kind and digest of a content request, or why it is none this view serves. */
export function parseContentRequest(urlPath: string): ContentRequest | string {
  const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(urlPath);
  if (match === null) return `not a manifest or blob path: ${urlPath}`;
  const [, repository, kind, reference] = match;
  const components = repository.split('/');
  if (components[0] !== VIEW_REPOSITORY_PREFIX || components.length < 2) return `this registry serves only ${VIEW_REPOSITORY_PREFIX}/… repositories`;
  if (!components.slice(1).every((c) => REPOSITORY_COMPONENT.test(c))) return `repository ${repository} is not a valid image name`;
  if (!DIGEST.test(reference)) return `${kind} are served by sha256 digest only (the Checkpoint's status names it), not ${JSON.stringify(reference)}`;
  return { components: components.slice(1), kind: kind as 'manifests' | 'blobs', reference };
}

function sendBytes(res: ServerResponse, bytes: Buffer, contentType: string, digest: string, head: boolean): void {
  res.writeHead(200, { 'content-type': contentType, 'content-length': bytes.length, 'docker-content-digest': digest, ...API_VERSION_HEADER });
  res.end(head ? undefined : bytes);
}

/** An error in the distribution API's shape, which runtimes show in their pull errors. */
function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...API_VERSION_HEADER, ...headers });
  res.end(JSON.stringify({ errors: [{ code, message }] }));
}
