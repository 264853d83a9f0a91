/** TLS from files (cert-manager): reloaded when the mounted Secret changes, a broken pair ignored. */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metrics, createCertificateAuthority, issueServingCertificate, serviceDnsNames, type TlsKeyPair, parseCertificate } from '@cryo/common';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileTlsSource } from './file-tls-source.ts';
import { createTlsSource } from './serving-tls.ts';
import { captureLogger, type CapturedLogger, writeProjectedVolume, waitFor } from '@cryo/test';

const dnsNames = serviceDnsNames('cryo-webhook', 'cryo-system');
const serialOf = (pair: TlsKeyPair) => parseCertificate(pair.cert).serial;

describe('FileTlsSource', () => {
  let pairs: TlsKeyPair[];
  let dir: string;
  let log: CapturedLogger;
  let metrics: Metrics;
  let source: FileTlsSource | undefined;

  beforeAll(async () => {
    const ca = await createCertificateAuthority();
    pairs = await Promise.all([1, 2, 3].map(() => issueServingCertificate(ca, { dnsNames, validitySeconds: 3600 })));
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-tls-'));
    log = captureLogger();
    metrics = new Metrics({ defaultMetrics: false });
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  // No polling to speak of: these tests see the directory watch at work.
  const newSource = (pollSeconds = 3600) =>
    new FileTlsSource({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), pollSeconds, logger: log.logger, metrics });
  const mount = (pair: TlsKeyPair) => writeProjectedVolume(dir, { 'tls.crt': pair.cert, 'tls.key': pair.key });

  it('serves the pair in the files and reports it', async () => {
    await mount(pairs[0]);
    source = newSource();
    expect(await source.start()).toEqual(pairs[0]);
    expect(source.status).toMatchObject({ ready: true, serial: serialOf(pairs[0]), notAfter: parseCertificate(pairs[0].cert).notAfter });
    const exposition = (await metrics.render()).body;
    expect(exposition).toContain(`cryo_webhook_serving_cert_expiry_timestamp_seconds ${parseCertificate(pairs[0].cert).notAfter.getTime() / 1000}`);
  });

  it('reloads when the kubelet swaps the ..data symlink to a renewed Secret', async () => {
    await mount(pairs[0]);
    source = newSource();
    await source.start();
    const changes: TlsKeyPair[] = [];
    source.onChange((pair) => changes.push(pair));

    await mount(pairs[1]);
    await waitFor(() => changes.length === 1, { what: 'the reload after the swap' });
    expect(changes[0]).toEqual(pairs[1]);
    expect(source.status.serial).toBe(serialOf(pairs[1]));
    expect((await metrics.render()).body).toContain('cryo_webhook_serving_cert_rotations_total 1');
  });

  it('reloads plain files replaced in place', async () => {
    await writeFile(join(dir, 'tls.crt'), pairs[0].cert);
    await writeFile(join(dir, 'tls.key'), pairs[0].key);
    source = newSource();
    await source.start();
    const changes: TlsKeyPair[] = [];
    source.onChange((pair) => changes.push(pair));

    await writeFile(join(dir, 'tls.key'), pairs[2].key);
    await writeFile(join(dir, 'tls.crt'), pairs[2].cert);
    await waitFor(() => source?.status.serial === serialOf(pairs[2]), { what: 'the new serial' });
    expect(changes.at(-1)).toEqual(pairs[2]);
  });

  it('keeps the current pair and logs an error when the files hold a mismatched or broken pair', async () => {
    await mount(pairs[0]);
    source = newSource();
    await source.start();
    const changes: TlsKeyPair[] = [];
    source.onChange((pair) => changes.push(pair));

    await writeProjectedVolume(dir, { 'tls.crt': pairs[1].cert, 'tls.key': pairs[2].key });
    await waitFor(() => log.messages('error').length === 1, { what: 'the error about the mismatched pair' });
    await writeProjectedVolume(dir, { 'tls.crt': 'not a certificate', 'tls.key': pairs[2].key });
    await waitFor(() => log.messages('error').length === 2, { what: 'the error about the garbage' });
    await source.reload();

    expect(changes).toEqual([]);
    expect(source.status).toMatchObject({ ready: true, serial: serialOf(pairs[0]) });
    expect(log.lines.filter((line) => line.level === 'error').map((line) => line.reason)).toEqual([
      'private key does not match the certificate',
      expect.stringMatching(/^certificate does not parse/),
    ]);

    // A good pair afterwards is taken as usual.
    await mount(pairs[1]);
    await waitFor(() => changes.length === 1, { what: 'the good pair' });
    expect(changes[0]).toEqual(pairs[1]);
  });

  it('polls, for changes no watched directory hears about', async () => {
    // The configured paths are symlinks into another directory: writes there make no event here.
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, 'tls.crt'), pairs[0].cert);
    await writeFile(join(elsewhere, 'tls.key'), pairs[0].key);
    await symlink(join(elsewhere, 'tls.crt'), join(dir, 'tls.crt'));
    await symlink(join(elsewhere, 'tls.key'), join(dir, 'tls.key'));
    source = newSource(0.2);
    await source.start();

    await writeFile(join(elsewhere, 'tls.key'), pairs[1].key);
    await writeFile(join(elsewhere, 'tls.crt'), pairs[1].cert);
    await waitFor(() => source?.status.serial === serialOf(pairs[1]), { what: 'the polled reload' });
  });

  it('refuses to start from files that do not hold a usable pair', async () => {
    await writeProjectedVolume(dir, { 'tls.crt': pairs[0].cert, 'tls.key': pairs[1].key });
    source = newSource();
    await expect(source.start()).rejects.toThrow(/tls\.crt and .*tls\.key: private key does not match the certificate/);
    await expect(newSource().start()).rejects.toThrow(/tls\.crt/);
  });

  it('is what createTlsSource picks when both files are configured, and both are required', () => {
    const config = {
      namespace: 'cryo-system',
      serviceName: 'cryo-webhook',
      webhookConfigName: 'cryo-webhook',
      tlsSecretName: 'cryo-webhook-tls',
      tlsCertFile: join(dir, 'tls.crt'),
      tlsKeyFile: join(dir, 'tls.key'),
      servingCertValiditySeconds: 3600,
      servingCertRenewBeforeSeconds: 600,
      tlsResyncSeconds: 60,
    };
    expect(createTlsSource(config, { logger: log.logger, metrics })).toBeInstanceOf(FileTlsSource);
    expect(() => createTlsSource({ ...config, tlsKeyFile: '' }, { logger: log.logger, metrics })).toThrow(/go together/);
    expect(() => createTlsSource({ ...config, tlsCertFile: '', tlsKeyFile: '' }, { logger: log.logger, metrics })).toThrow(/needs a kubeConfig/);
  });
});
