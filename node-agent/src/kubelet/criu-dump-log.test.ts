/**
 * criu-dump-log.ts on real files in temp directories: which paths a runtime's error names, which
 * of them may be read (inside the allowed directories, no `..`, no symlink out, a regular file),
 * and what of CRIU's log reaches the message.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedDirContaining, criuErrorLinesFor, criuErrorLinesOf, dumpLogPathsIn, MAX_CRIU_ERROR_LINE_CHARS, MAX_DUMP_LOG_TAIL_BYTES } from './criu-dump-log.ts';

const TASK_DIR = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';
const CONTAINER_ID = 'f24ba3c0ffee';
/** What the kubelet answered on a node with containerd 2.1, runc and CRIU 4.2 (its body, as the client quotes it). */
const containerdError = (logPath: string) =>
  `checkpointing of cryo-e2e/raw/app failed (rpc error: code = Unknown desc = checkpointing container "${CONTAINER_ID}" failed: ` +
  `runc did not terminate successfully: exit status 1: criu failed: type DUMP errno 0 path= ${logPath})`;
const TCP_ERROR = 'Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.';
/** The end of a failed dump's log as CRIU 4.2 writes it. */
const FAILED_DUMP_LOG = [
  '(00.000000) Version: 4.2 (gitid 0)',
  "(00.000812) Error (criu/util.c:631): Can't setup RLIMIT_NOFILE for self: Operation not permitted",
  '(00.004101) Dumping path for 3 fd via self 12 [/app]',
  `(00.123456) ${TCP_ERROR}`,
  '(00.123470) Error (criu/sk-inet.c:463): inet: Dumping inet socket 12 failed',
  '(00.123480) Error (criu/cr-dump.c:1625): Dump files (pid: 1) failed with -1',
  '(00.123491) Error (criu/cr-dump.c:2062): Dumping FAILED.',
  '',
].join('\n');

describe('dumpLogPathsIn', () => {
  it("finds containerd's `path= ` in the kubelet's answer, without the closing parenthesis", () => {
    expect(dumpLogPathsIn(containerdError(`${TASK_DIR}/${CONTAINER_ID}/criu-dump.log`))).toEqual([`${TASK_DIR}/${CONTAINER_ID}/criu-dump.log`]);
  });

  it("finds CRI-O's `Please check CRIU logfile <path>: <errno>`, without the colon", () => {
    // As CRI-O 1.34 with crun answered on the test cluster (docs/cluster.md).
    const message = 'failed: CRIU checkpointing failed -52.  Please check CRIU logfile /var/lib/containers/storage/overlay-containers/6c8f/userdata/dump.log: Invalid exchange)';
    expect(dumpLogPathsIn(message)).toEqual(['/var/lib/containers/storage/overlay-containers/6c8f/userdata/dump.log']);
  });

  it("finds runc's and crun's `log file: `, on its own line or escaped, each path once and in order", () => {
    const userdata = '/var/lib/containers/storage/overlay-containers/abc/userdata';
    expect(dumpLogPathsIn(`criu failed: type DUMP errno 0\nlog file: ${userdata}/dump.log`)).toEqual([`${userdata}/dump.log`]);
    expect(dumpLogPathsIn(`criu failed: type DUMP errno 0\\nlog file: ${userdata}/dump.log\\n"`)).toEqual([`${userdata}/dump.log`]);
    expect(dumpLogPathsIn(`path= /a/x.log; log file: /b/y.log; path= /a/x.log`)).toEqual(['/a/x.log', '/b/y.log']);
  });

  it('finds nothing in a message without a log path, or with a relative one', () => {
    expect(dumpLogPathsIn('running "crun checkpoint" failed: checkpoint failed')).toEqual([]);
    expect(dumpLogPathsIn('filepath= /etc/shadow, path= relative/criu-dump.log')).toEqual([]);
  });
});

describe('allowedDirContaining', () => {
  it('allows a path strictly inside an allowed directory, comparing resolved paths', () => {
    expect(allowedDirContaining(`${TASK_DIR}/${CONTAINER_ID}/criu-dump.log`, ['/var/log', `${TASK_DIR}/`])).toBe(TASK_DIR);
    expect(allowedDirContaining(`${TASK_DIR}//${CONTAINER_ID}/./criu-dump.log`, [TASK_DIR])).toBe(TASK_DIR);
  });

  it('refuses a path outside, a sibling sharing a prefix, the directory itself and a relative path', () => {
    expect(allowedDirContaining('/etc/shadow', [TASK_DIR])).toBeUndefined();
    expect(allowedDirContaining(`${TASK_DIR}-other/x/criu-dump.log`, [TASK_DIR])).toBeUndefined();
    expect(allowedDirContaining(TASK_DIR, [TASK_DIR])).toBeUndefined();
    expect(allowedDirContaining(`k8s.io/${CONTAINER_ID}/criu-dump.log`, [TASK_DIR])).toBeUndefined();
  });

  it('refuses any `..` segment, even one that would resolve inside', () => {
    expect(allowedDirContaining(`${TASK_DIR}/../../../../etc/shadow`, [TASK_DIR])).toBeUndefined();
    expect(allowedDirContaining(`${TASK_DIR}/${CONTAINER_ID}/../${CONTAINER_ID}/criu-dump.log`, [TASK_DIR])).toBeUndefined();
  });
});

describe('criuErrorLinesOf', () => {
  it("keeps CRIU's first error lines without timestamps, skipping the harmless RLIMIT_NOFILE one", () => {
    expect(criuErrorLinesOf(FAILED_DUMP_LOG)).toEqual([
      TCP_ERROR,
      'Error (criu/sk-inet.c:463): inet: Dumping inet socket 12 failed',
      'Error (criu/cr-dump.c:1625): Dump files (pid: 1) failed with -1',
    ]);
  });

  it('cuts a long line and turns control characters into spaces', () => {
    const [long, controlled] = criuErrorLinesOf(`(00.1) Error (criu/files.c:1): ${'x'.repeat(1000)}\n(00.2) Error (a.c:2): one\rtwo\u001b[31m\n`);
    expect(long).toHaveLength(MAX_CRIU_ERROR_LINE_CHARS);
    expect(long).toMatch(/^Error \(criu\/files\.c:1\): x+…$/);
    expect(controlled).toBe('Error (a.c:2): one two [31m');
  });

  it('finds nothing in a log without errors', () => {
    expect(criuErrorLinesOf('(00.000000) Version: 4.2\n(00.1) Dumping finished successfully\n')).toEqual([]);
  });
});

describe('criuErrorLinesFor on files', () => {
  let root: string;
  let allowed: string;
  let outside: string;
  const logIn = (dir: string, id = CONTAINER_ID) => join(dir, id, 'criu-dump.log');

  beforeAll(async () => {
    // realpath: where the temp directory is itself behind a symlink, the test's paths are the real ones.
    root = await realpath(await mkdtemp(join(tmpdir(), 'cryo-criu-dump-log-')));
    allowed = join(root, 'io.containerd.runtime.v2.task', 'k8s.io');
    outside = join(root, 'elsewhere');
    await mkdir(join(allowed, CONTAINER_ID), { recursive: true });
    await mkdir(join(outside, CONTAINER_ID), { recursive: true });
    await writeFile(logIn(allowed), FAILED_DUMP_LOG);
    await writeFile(logIn(outside), FAILED_DUMP_LOG);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("reads the log containerd's message names inside an allowed directory", async () => {
    expect(await criuErrorLinesFor(containerdError(logIn(allowed)), ['/nonexistent', allowed])).toEqual(criuErrorLinesOf(FAILED_DUMP_LOG));
  });

  it('reads the same file in runc’s `log file:` form', async () => {
    expect((await criuErrorLinesFor(`criu failed: type DUMP errno 0\nlog file: ${logIn(allowed)}`, [allowed]))?.[0]).toBe(TCP_ERROR);
  });

  it('refuses a log outside the allowed directories, and reads nothing without any', async () => {
    expect(await criuErrorLinesFor(containerdError(logIn(outside)), [allowed])).toBeUndefined();
    expect(await criuErrorLinesFor(containerdError(logIn(allowed)), [])).toBeUndefined();
  });

  it('refuses a path with `..`, whether it climbs out or comes back in', async () => {
    expect(await criuErrorLinesFor(containerdError(`${allowed}/../../elsewhere/${CONTAINER_ID}/criu-dump.log`), [allowed])).toBeUndefined();
    expect(await criuErrorLinesFor(containerdError(`${allowed}/${CONTAINER_ID}/../${CONTAINER_ID}/criu-dump.log`), [allowed])).toBeUndefined();
  });

  it('refuses a symlinked log file, and a symlinked directory, inside the allowed one that point outside', async () => {
    await mkdir(join(allowed, 'linked-file'));
    await symlink(logIn(outside), join(allowed, 'linked-file', 'criu-dump.log'));
    expect(await criuErrorLinesFor(containerdError(logIn(allowed, 'linked-file')), [allowed])).toBeUndefined();
    await symlink(join(outside, CONTAINER_ID), join(allowed, 'linked-dir'));
    expect(await criuErrorLinesFor(containerdError(logIn(allowed, 'linked-dir')), [allowed])).toBeUndefined();
  });

  it('follows a symlinked directory that stays inside (the real parent is checked, not the spelling)', async () => {
    await symlink(join(allowed, CONTAINER_ID), join(allowed, 'alias'));
    expect((await criuErrorLinesFor(containerdError(logIn(allowed, 'alias')), [allowed]))?.[0]).toBe(TCP_ERROR);
  });

  it('gives undefined for a missing file, a directory, a FIFO, an unreadable file and a log without errors', async () => {
    expect(await criuErrorLinesFor(containerdError(logIn(allowed, 'missing')), [allowed])).toBeUndefined();
    await mkdir(join(allowed, 'dir', 'criu-dump.log'), { recursive: true });
    expect(await criuErrorLinesFor(containerdError(logIn(allowed, 'dir')), [allowed])).toBeUndefined();
    await mkdir(join(allowed, 'fifo'));
    execFileSync('mkfifo', [logIn(allowed, 'fifo')]);
    // O_NONBLOCK: the open does not wait for a writer, and fstat then refuses it.
    expect(await criuErrorLinesFor(containerdError(logIn(allowed, 'fifo')), [allowed])).toBeUndefined();
    await mkdir(join(allowed, 'clean'));
    await writeFile(logIn(allowed, 'clean'), '(00.000000) Version: 4.2\n(00.2) Dumping finished successfully\n');
    expect(await criuErrorLinesFor(containerdError(logIn(allowed, 'clean')), [allowed])).toBeUndefined();
    if (process.getuid?.() !== 0) {
      // Root reads a mode-0 file anyway; as anyone else it cannot be opened.
      await mkdir(join(allowed, 'secret'));
      await writeFile(logIn(allowed, 'secret'), FAILED_DUMP_LOG, { mode: 0o000 });
      await chmod(logIn(allowed, 'secret'), 0o000);
      expect(await criuErrorLinesFor(containerdError(logIn(allowed, 'secret')), [allowed])).toBeUndefined();
    }
  });

  it('reads only the last 256 KiB of a big log, from a whole line on', async () => {
    await mkdir(join(allowed, 'big'));
    const early = '(00.000100) Error (criu/early.c:1): an error before the tail\n';
    const filler = '(00.000200) Dumping something uninteresting, at length\n'.repeat(Math.ceil(MAX_DUMP_LOG_TAIL_BYTES / 50));
    await writeFile(logIn(allowed, 'big'), early + filler + `(09.000000) ${TCP_ERROR}\n`);
    expect(await criuErrorLinesFor(containerdError(logIn(allowed, 'big')), [allowed])).toEqual([TCP_ERROR]);
  });
});
