import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, describeOptions } from '@cryo/common';
import { itKeepsItsFlagsTrue } from '@cryo/test';
import { readWebhookConfig, webhookOptionSpecs } from './config.ts';

describe('--client-ca-file and --client-allowed-names', () => {
  let dir: string;
  let bundle: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cryo-webhook-config-'));
    const [a, b] = await Promise.all([createCertificateAuthority(), createCertificateAuthority()]);
    bundle = join(dir, 'ca.crt');
    writeFileSync(bundle, `${a.cert}${b.cert}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('are off by default: any client is answered', () => {
    expect(readWebhookConfig([], {})).toMatchObject({ clientCaFile: '', clientAllowedNames: [] });
    expect(describeOptions(webhookOptionSpecs)).toContain('--client-allowed-names <value>   env CRYO_CLIENT_ALLOWED_NAMES, default (any the CA signed)\n');
  });

  it('take a PEM bundle and comma-separated names, from the flags or the env', () => {
    expect(readWebhookConfig(['--client-ca-file', bundle, '--client-allowed-names', ' kube-apiserver-webhook-client, cryo-webhook.cryo-system.svc,'], {})).toMatchObject({
      clientCaFile: bundle,
      clientAllowedNames: ['kube-apiserver-webhook-client', 'cryo-webhook.cryo-system.svc'],
    });
    expect(readWebhookConfig([], { CRYO_CLIENT_CA_FILE: bundle, CRYO_CLIENT_ALLOWED_NAMES: 'a' })).toMatchObject({ clientCaFile: bundle, clientAllowedNames: ['a'] });
  });

  it('refuse at start a file that is missing, relative, not PEM, or a broken certificate, naming the flag', () => {
    const missing = join(dir, 'missing.crt');
    expect(() => readWebhookConfig(['--client-ca-file', missing], {})).toThrow(`--client-ca-file (env CRYO_CLIENT_CA_FILE): cannot read ${missing}: ENOENT`);
    expect(() => readWebhookConfig(['--client-ca-file', 'ca.crt'], {})).toThrow('--client-ca-file (env CRYO_CLIENT_CA_FILE): expected an absolute path, got "ca.crt"');
    const key = join(dir, 'key.pem');
    writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n');
    expect(() => readWebhookConfig(['--client-ca-file', key], {})).toThrow(`--client-ca-file (env CRYO_CLIENT_CA_FILE): ${key} holds no PEM certificate`);
    const broken = join(dir, 'broken.crt');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    expect(() => readWebhookConfig(['--client-ca-file', broken], {})).toThrow(`--client-ca-file (env CRYO_CLIENT_CA_FILE): certificate 1 of 1 in ${broken} does not parse`);
  });

  it('refuse names without a CA, and a list of no names', () => {
    expect(() => readWebhookConfig(['--client-allowed-names', 'kube-apiserver-webhook-client'], {})).toThrow('--client-allowed-names needs --client-ca-file');
    expect(() => readWebhookConfig(['--client-ca-file', bundle, '--client-allowed-names', ', ,'], {})).toThrow(
      '--client-allowed-names (env CRYO_CLIENT_ALLOWED_NAMES): expected names separated by commas, got ", ,"',
    );
  });
});

describe("the webhook's flags", () => {
  it('refuse relative certificate and key files at start, naming the flag', () => {
    expect(() => readWebhookConfig(['--tls-cert-file', 'tls.crt', '--tls-key-file', '/tls/tls.key'], {})).toThrow('--tls-cert-file (env CRYO_TLS_CERT_FILE): expected an absolute path, got "tls.crt"');
    expect(() => readWebhookConfig([], { CRYO_TLS_KEY_FILE: 'tls.key' })).toThrow('--tls-key-file (env CRYO_TLS_KEY_FILE): expected an absolute path, got "tls.key"');
  });

  it('read sizes as quantities and show them so: --max-body-bytes 10Mi, a larger one refused', () => {
    expect(readWebhookConfig(['--max-body-bytes', '10Mi'], {}).maxBodyBytes).toBe(10 * 2 ** 20);
    expect(() => readWebhookConfig(['--max-body-bytes=1Gi'], {})).toThrow('--max-body-bytes (env CRYO_MAX_BODY_BYTES): expected a size in bytes from 64Ki to 64Mi');
    expect(describeOptions(webhookOptionSpecs)).toContain('--max-body-bytes <value>   env CRYO_MAX_BODY_BYTES, default 4Mi\n');
  });

  itKeepsItsFlagsTrue({ specs: webhookOptionSpecs, table: ['README.md', '## Webhook configuration'], sources: 'webhook/src', except: ['config.ts'] });
});
