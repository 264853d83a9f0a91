/**
 * What the wiring relies on: `server.setSecureContext` swaps the certificate for new handshakes
 * while connections that are already open keep going on the old one.
 */
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueServingCertificate, serviceDnsNames, type TlsKeyPair, parseCertificate } from '@cryo/common';
import { callServer, startHttpsServer, type TestHttpsServer } from '@cryo/test';

const servername = 'cryo-webhook.cryo-system.svc';
const dnsNames = serviceDnsNames('cryo-webhook', 'cryo-system');

describe('rotating the serving certificate on a running server', () => {
  let ca: TlsKeyPair;
  let first: TlsKeyPair;
  let second: TlsKeyPair;
  let server: TestHttpsServer;
  let agent: https.Agent;

  beforeAll(async () => {
    ca = await createCertificateAuthority();
    [first, second] = await Promise.all([
      issueServingCertificate(ca, { dnsNames, validitySeconds: 3600 }),
      issueServingCertificate(ca, { dnsNames, validitySeconds: 3600 }),
    ]);
    server = await startHttpsServer(first);
    agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  });
  afterAll(async () => {
    agent.destroy();
    await server.close();
  });

  it('keeps the open keep-alive connection serving and hands new connections the new certificate', async () => {
    const before = await callServer({ port: server.port, ca: ca.cert, servername, agent });
    expect(before.serial).toBe(parseCertificate(first.cert).serial);

    server.server.setSecureContext(second);

    const sameConnection = await callServer({ port: server.port, ca: ca.cert, servername, agent });
    expect(sameConnection.status).toBe(200);
    expect(sameConnection.socket).toBe(before.socket);
    expect(sameConnection.serial).toBe(parseCertificate(first.cert).serial);

    const newConnection = await callServer({ port: server.port, ca: ca.cert, servername });
    expect(newConnection.socket).not.toBe(before.socket);
    expect(newConnection.serial).toBe(parseCertificate(second.cert).serial);
  });
});
