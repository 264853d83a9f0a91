/**
 * The benchmark's baseline: another process doing the cheapest exchange the protocol has, a
 * JSON ping → pong over the same unix socket. Prints the round trips (ms) as one JSON array.
 */
import WebSocket from 'ws';

const rounds = Number(process.env.ROUNDS ?? 1000);
const ws = new WebSocket(`ws+unix://${process.env.CRYO_HOOK_SOCKET}:/v1/hooks`);
await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
const next = () => new Promise((resolve) => ws.once('message', resolve));
ws.send(JSON.stringify({ type: 'hello', protocol: 1, sessionId: `baseline-${process.pid}-0000000000`, pid: process.pid, container: '', podUid: '', restoreCount: 0, pendingCheckpoint: null }));
await next();
const samples: number[] = [];
for (let i = 0; i < rounds; i++) {
  const started = performance.now();
  const answer = next();
  ws.send(JSON.stringify({ type: 'ping', id: `b-${i}` }));
  await answer;
  samples.push(performance.now() - started);
  // Idle between exchanges, as a process between checkpoints is: the wake-up is part of the cost.
  await new Promise((resolve) => setTimeout(resolve, 2));
}
ws.close();
process.stdout.write(JSON.stringify(samples) + '\n');
