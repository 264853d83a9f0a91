import { describe, expect, it } from 'vitest';
import { describeOptions } from '@cryo/common';
import { itKeepsItsFlagsTrue } from '@cryo/test';
import { nodeAgentOptionSpecs, readNodeAgentConfig } from './config.ts';

describe('readNodeAgentConfig', () => {
  const withNode = (...flags: string[]) => readNodeAgentConfig(['--node-name', 'node-a', ...flags], {});

  it('pushes a layer in one PATCH unless a chunk size is set, from the flag or the env', () => {
    expect(withNode().registryChunkBytes).toBe(0);
    expect(withNode('--registry-chunk-size', '104857600').registryChunkBytes).toBe(104_857_600);
    expect(readNodeAgentConfig(['--node-name', 'n'], { CRYO_REGISTRY_CHUNK_SIZE: '65536' }).registryChunkBytes).toBe(65_536);
  });

  it('refuses a chunk size too small to be a sensible PATCH, or no number, naming the flag', () => {
    expect(() => withNode('--registry-chunk-size', '4096')).toThrow(/--registry-chunk-size.*expected 0 \(the whole layer in one PATCH\) or at least 65536 bytes, got 4096/);
    expect(() => withNode('--registry-chunk-size', 'lots')).toThrow(/--registry-chunk-size/);
  });

  it('compresses checkpoint layers with zstd unless --registry-layer-compression says none, from the flag or the env; refuses another value, naming the choices', () => {
    expect(withNode().registryLayerCompression).toBe('zstd');
    expect(withNode('--registry-layer-compression', 'none').registryLayerCompression).toBe('none');
    expect(readNodeAgentConfig(['--node-name', 'n'], { CRYO_REGISTRY_LAYER_COMPRESSION: 'none' }).registryLayerCompression).toBe('none');
    expect(() => withNode('--registry-layer-compression', 'gzip')).toThrow('--registry-layer-compression (env CRYO_REGISTRY_LAYER_COMPRESSION): expected none or zstd, got "gzip"');
    // The storage class spells it None/Zstd; the flag takes only the lowercase names.
    expect(() => withNode('--registry-layer-compression', 'Zstd')).toThrow(/expected none or zstd, got "Zstd"/);
  });

  it("reads CRIU's logs only in containerd's k8s.io task directory and CRI-O's container directory unless told other absolute directories", () => {
    expect(withNode().criuLogDirs).toEqual(['/run/containerd/io.containerd.runtime.v2.task/k8s.io', '/var/lib/containers/storage/overlay-containers']);
    expect(withNode('--criu-log-dirs', '/run/a, /var/lib/b,').criuLogDirs).toEqual(['/run/a', '/var/lib/b']);
    expect(readNodeAgentConfig(['--node-name', 'n'], { CRYO_CRIU_LOG_DIRS: '/run/c' }).criuLogDirs).toEqual(['/run/c']);
  });

  it('refuses CRIU log directories that are not absolute, naming the flag, the env var and each one', () => {
    expect(() => withNode('--criu-log-dirs', '/run/a,run/b,./c')).toThrow(
      '--criu-log-dirs (env CRYO_CRIU_LOG_DIRS): expected absolute paths separated by commas; not absolute: "run/b", "./c"',
    );
    expect(() => withNode('--criu-log-dirs', ', ,')).toThrow('--criu-log-dirs (env CRYO_CRIU_LOG_DIRS): expected absolute paths separated by commas, got ", ,"');
  });

  it('detects whether the runtime restores unless --runtime-restore says so; refuses another value, naming the choices', () => {
    expect(withNode().runtimeRestore).toBe('auto');
    expect(withNode('--runtime-restore', 'enabled').runtimeRestore).toBe('enabled');
    expect(readNodeAgentConfig(['--node-name', 'n'], { CRYO_RUNTIME_RESTORE: 'disabled' }).runtimeRestore).toBe('disabled');
    expect(() => withNode('--runtime-restore', 'on')).toThrow('--runtime-restore (env CRYO_RUNTIME_RESTORE): expected auto, enabled, disabled, got "on"');
  });

  it("reads the runtimes' config files where they are by default, or at other absolute paths", () => {
    expect(withNode()).toMatchObject({ containerdConfig: '/etc/containerd/config.toml', crioConfig: '/etc/crio/crio.conf', crioConfigDir: '/etc/crio/crio.conf.d' });
    expect(withNode('--containerd-config', '/var/lib/rancher/k3s/agent/etc/containerd/config.toml').containerdConfig).toBe('/var/lib/rancher/k3s/agent/etc/containerd/config.toml');
    expect(() => withNode('--crio-config-dir', 'crio.conf.d')).toThrow('--crio-config-dir (env CRYO_CRIO_CONFIG_DIR): expected an absolute path, got "crio.conf.d"');
  });

  it('lets a pod hold 32 hook connections at once unless --hook-max-connections-per-pod says otherwise; refuses 0, naming the flag and the range', () => {
    expect(withNode().hookMaxConnectionsPerPod).toBe(32);
    expect(withNode('--hook-max-connections-per-pod', '8').hookMaxConnectionsPerPod).toBe(8);
    expect(readNodeAgentConfig(['--node-name', 'n'], { CRYO_HOOK_MAX_CONNECTIONS_PER_POD: '64' }).hookMaxConnectionsPerPod).toBe(64);
    expect(() => withNode('--hook-max-connections-per-pod', '0')).toThrow(
      '--hook-max-connections-per-pod (env CRYO_HOOK_MAX_CONNECTIONS_PER_POD): expected a whole number from 1 to 1024, got "0"',
    );
  });

  it('shows the CRIU log directory default in --help as the flag would take it, quoted like the other paths', () => {
    expect(describeOptions(nodeAgentOptionSpecs)).toContain('--criu-log-dirs <value>   env CRYO_CRIU_LOG_DIRS, default "/run/containerd/io.containerd.runtime.v2.task/k8s.io,/var/lib/containers/storage/overlay-containers"\n');
  });

  it('refuses at start a registry repository with a scheme, tag or digest, and a store directory or hooks directory that is not absolute', () => {
    expect(withNode('--registry-repository', 'registry.example.com:5000/cryo/checkpoints/').registryRepository).toBe('registry.example.com:5000/cryo/checkpoints');
    expect(withNode('--registry-repository', '[::1]:5000/cryo').registryRepository).toBe('[::1]:5000/cryo');
    for (const bad of ['http://registry.example.com/cryo', 'registry.example.com/cryo:latest', 'registry.example.com', 'Registry.Example/cryo']) {
      expect(() => withNode('--registry-repository', bad)).toThrow(/--registry-repository \(env CRYO_REGISTRY_REPOSITORY\): expected a repository such as registry.example.com\/cryo\/checkpoints/);
    }
    expect(() => withNode('--directory', 'checkpoints')).toThrow('--directory (env CRYO_DIRECTORY): expected an absolute path, got "checkpoints"');
    expect(withNode('--directory', '').directory).toBe('');
    expect(() => withNode('--host-hooks-dir', 'hooks')).toThrow(/--host-hooks-dir.*expected an absolute path, got "hooks"/);
    expect(withNode('--registry-allowed-repositories', 'a.example/x, b.example:5000/y/').registryAllowedRepositories).toEqual(['a.example/x', 'b.example:5000/y']);
    expect(() => withNode('--registry-allowed-repositories', 'a.example/x,https://b.example/y')).toThrow(/not one: "https:\/\/b.example\/y"/);
  });

  it("refuses at start a kubelet URL that is not https, a node IP that is no address, and relative credential files, naming the flag", () => {
    expect(withNode('--kubelet-url', 'https://10.0.0.5:10250/', '--node-ip', 'fd00::5').kubeletUrl).toBe('https://10.0.0.5:10250');
    expect(() => withNode('--kubelet-url', 'http://10.0.0.5:10255')).toThrow('--kubelet-url (env CRYO_KUBELET_URL): expected an https:// URL such as https://10.0.0.5:10250, got "http://10.0.0.5:10255"');
    expect(() => readNodeAgentConfig(['--node-name', 'n'], { NODE_IP: 'node-a.internal' })).toThrow('--node-ip (env NODE_IP): expected an IPv4 or IPv6 address, got "node-a.internal"');
    for (const flag of ['--token-file', '--kubelet-ca-file', '--registry-auth-file', '--registry-ca-file']) {
      expect(() => withNode(flag, 'secrets/file')).toThrow(new RegExp(`^${flag} \\(env CRYO_[A-Z_]+\\): expected an absolute path, got "secrets/file"$`));
    }
  });

  it('takes booleans alone, negated or after =, from the cluster overlay\'s spelling to the env', () => {
    expect(withNode('--registry-insecure', '--directory-shared').registryInsecure).toBe(true);
    expect(withNode('--registry-insecure=true').registryInsecure).toBe(true);
    expect(readNodeAgentConfig(['--node-name', 'n', '--no-directory-shared'], { CRYO_DIRECTORY_SHARED: 'true' }).directoryShared).toBe(false);
    expect(() => withNode('--registry-insecure', 'true')).toThrow('--registry-insecure takes no separate value: write --registry-insecure or --registry-insecure=true');
  });

  it("serves the directory store's registry view on 127.0.0.1:5051 unless told another address or off (an empty value means the default, as for every flag)", () => {
    expect(withNode().directoryRegistryAddress).toBe('127.0.0.1:5051');
    expect(withNode('--directory-registry-address', '').directoryRegistryAddress).toBe('127.0.0.1:5051');
    expect(withNode('--directory-registry-address', 'off').directoryRegistryAddress).toBe('');
    expect(withNode('--directory-registry-address', '127.0.0.1:0').directoryRegistryAddress).toBe('127.0.0.1:0');
    expect(() => withNode('--directory-registry-address', 'localhost:5051')).toThrow(/expected an IPv4 address and port such as 127.0.0.1:5051, or off, got "localhost:5051"/);
  });
});

describe("the node agent's flags", () => {
  itKeepsItsFlagsTrue({ specs: nodeAgentOptionSpecs, table: ['README.md', '## Node agent configuration'], sources: 'node-agent/src', except: ['config.ts', 'store-options.ts', 'local/local-main.ts'] });
});
