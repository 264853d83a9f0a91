/**
 * The benchmark's baseline: a bare node:https server that reads and parses the AdmissionReview
 * and returns a fixed answer. Started as a child process by webhook-bench.ts; prints its port.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';

const { cert, key } = JSON.parse(process.env.BENCH_TLS ?? '{}') as { cert: string; key: string };
const fixed = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '', allowed: true } });

const server = https.createServer({ cert, key }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(fixed) });
    res.end(fixed);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
