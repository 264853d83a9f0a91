/**
 * The checkpoint image around an archive, the same for both stores (the registry store pushes it;
 * the directory store keeps its manifest and config in the archive's sidecar and serves them on
 * the node, directory-registry-view.ts): an OCI image manifest with one layer, the archive (a tar
 * of the files that belong at `/`), and a minimal config whose diff_id is the archive's digest.
 * The layer is the archive itself, or (registry store, layer compression zstd) the archive
 * zstd-compressed: the manifest then names the compressed blob and `…tar+zstd`, the diff_id
 * stays the uncompressed tar's. A Node heap's pages compress to about a fifth (npm run
 * bench:compression; docs/operations.md, "Layer compression"), at the cost of unpacking them at
 * every restore. The checkpoint annotations go on the manifest, where CRI-O, containerd and Podman
 * read them; Cryo's own also go into the config's labels, where `podman inspect` and
 * `skopeo inspect` show them.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import type { PodCheckpoint } from '@cryo/common';
import type { StoreRequest } from '../checkpoint-store.ts';
import type { HostFacts } from './checkpoint-annotations.ts';
import { checkpointAnnotations, CRYO_ANNOTATIONS, cryoAnnotations, podCheckpointAnnotations } from './checkpoint-annotations.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

export interface Blob {
  bytes: Buffer;
  digest: string;
}

export interface CheckpointImage {
  config: Blob;
  manifest: Blob;
  annotations: Record<string, string>;
}

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

// Node's process.arch → the GOARCH names OCI platforms use.
const GOARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' };

/**
 * The host as the agent sees it. In a pod the kernel and cgroup mode are the node's; the
 * distribution is the agent image's, so it is not recorded.
 */
export function hostFacts(): HostFacts {
  const cgroupVersion = existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : existsSync('/sys/fs/cgroup') ? 'v1' : '';
  return { arch: GOARCH[process.arch] ?? process.arch, kernel: os.release(), cgroupVersion };
}

/** The image's one layer as stored: the archive itself unless a media type and diff_id say it is compressed. */
export interface CheckpointLayer {
  /** `sha256:<hex>` and byte count of the blob as stored. */
  digest: string;
  size: number;
  /** Default: an uncompressed tar. */
  mediaType?: string;
  /** The uncompressed tar's digest (the config's diff_id); default: `digest`, the layer being that tar. */
  diffId?: string;
}

export function buildCheckpointImage(request: StoreRequest, layer: CheckpointLayer, host: HostFacts, created: Date): CheckpointImage {
  const annotations = checkpointAnnotations(request, host, created);
  const config = {
    created: created.toISOString(),
    architecture: host.arch,
    os: 'linux',
    config: { Labels: cryoAnnotations(request, created) },
    rootfs: { type: 'layers', diff_ids: [layer.diffId ?? layer.digest] },
    history: [
      {
        created: created.toISOString(),
        created_by: 'cryo node-agent',
        comment: `checkpoint ${request.checkpoint.namespace}/${request.checkpoint.name} of container ${request.containerName} in pod ${request.pod.name}`,
      },
    ],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = sha256Digest(configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers: [{ mediaType: layer.mediaType ?? OCI_LAYER_TAR, digest: layer.digest, size: layer.size }],
    annotations,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { config: { bytes: configBytes, digest: configDigest }, manifest: { bytes: manifestBytes, digest: sha256Digest(manifestBytes) }, annotations };
}

export interface PodCheckpointIndexInput {
  document: PodCheckpoint;
  /** Each container's checkpoint image manifest, in the document's order. */
  images: ReadonlyArray<{ name: string; digest: string; sizeBytes: number }>;
}

/**
 * The pod checkpoint as an OCI image index: its manifests are the containers' checkpoint images
 * (each annotated with its container's name, as an index names platforms), and its annotations
 * say whose checkpoint it is and hold the PodCheckpoint document itself.
 */
export function buildPodCheckpointIndex({ document, images }: PodCheckpointIndexInput): Blob {
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((image) => ({
      mediaType: OCI_MANIFEST,
      digest: image.digest,
      size: image.sizeBytes,
      annotations: { [CRYO_ANNOTATIONS.containerName]: image.name },
    })),
    annotations: podCheckpointAnnotations(document),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  return { bytes, digest: sha256Digest(bytes) };
}
