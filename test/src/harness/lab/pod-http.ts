/**
 * Plain HTTP to a server in a lab pod that leaves no connection behind: CRIU refuses to dump a
 * process holding an established TCP connection (CRI-O does not pass --tcp-established), so a
 * keep-alive socket from a test would make the next checkpoint fail.
 */
import http from 'node:http';

export interface PodHttpResponse {
  status: number;
  text: string;
  json<T = unknown>(): T;
}

export function podHttp(host: string, port: number, method: string, path: string, timeoutMs = 5_000): Promise<PodHttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const answer = { status: res.statusCode ?? 0, text, json: <T>() => JSON.parse(text) as T };
        // Answer once our end is closed, so the server's side is closing too.
        if (res.socket.destroyed) resolve(answer);
        else res.socket.once('close', () => resolve(answer)).destroy();
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from http://${host}:${port}${path} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
