/**
 * The Java hook client as a library people depend on: its JUnit 5 unit tests (hook-sdk-java/test.sh,
 * with the console launcher of Debian's junit5 package), then the versioned jar that build.sh packs,
 * used by an application as a module and from the class path.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const build = path.join(root, '.tmp/java/unit');
const junitJar = process.env.JUNIT_CONSOLE_JAR ?? '/usr/share/java/junit-platform-console-standalone.jar';
const FIX = 'run `bash scripts/lab/provision.sh` as root (it installs them), or apt-get install default-jdk-headless junit5';

function whyNot(): string | undefined {
  if (spawnSync('javac', ['-version']).error !== undefined) return `no JDK (javac) on PATH: ${FIX}`;
  if (!existsSync(junitJar)) return `no JUnit 5 console launcher at ${junitJar}: ${FIX}`;
  return undefined;
}
const skip = whyNot();

/** Runs a command; resolves with its exit code and output instead of throwing. */
async function attempt(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  try {
    const { stdout, stderr } = await run(file, args, { ...options, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe.skipIf(skip !== undefined)(`the Java hook client as a library${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  let version: string;
  let jar: string;
  let unit: Awaited<ReturnType<typeof attempt>>;
  let app: string;

  beforeAll(async () => {
    version = (await run('bash', [path.join(root, 'hook-sdk-java/build.sh'), '--version'])).stdout.trim();
    jar = path.join(build, `cryo-hooks-${version}.jar`);
    unit = await attempt('bash', [path.join(root, 'hook-sdk-java/test.sh')], { env: { ...process.env, BUILD: build, JUNIT_CONSOLE_JAR: junitJar } });
    await mkdir(path.join(root, '.tmp'), { recursive: true });
    app = await mkdtemp(path.join(root, '.tmp/java-consumer-'));
  }, 300_000);

  afterAll(async () => {
    if (app !== undefined) await rm(app, { recursive: true, force: true });
  });

  it('passes its JUnit 5 unit tests: JSON, WebSocket framing, messages, hook order', async () => {
    expect(unit.code, `${unit.stdout}\n${unit.stderr}`).toBe(0);
    const report = await readFile(path.join(build, 'reports/TEST-junit-jupiter.xml'), 'utf8');
    const suite = /<testsuite name="JUnit Jupiter" tests="(\d+)" skipped="(\d+)" failures="(\d+)" errors="(\d+)"/.exec(report);
    expect(suite, 'the launcher wrote its XML report').not.toBeNull();
    const [tests, skipped, failures, errors] = suite!.slice(1).map(Number);
    expect({ skipped, failures, errors }).toEqual({ skipped: 0, failures: 0, errors: 0 });
    // Every test class ran (a scan that found fewer would still pass the launcher).
    expect(tests).toBeGreaterThanOrEqual(140);
    for (const testClass of ['JsonTest', 'WebSocketConnectionTest', 'MessagesTest', 'HookRegistryTest']) {
      expect(report).toContain(`classname="dev.cryo.hooks.${testClass}`);
    }
  });

  it('is a jar of the module dev.cryo.hooks alone, exporting its one package, versioned as pom.xml says', async () => {
    const pom = await readFile(path.join(root, 'hook-sdk-java/pom.xml'), 'utf8');
    expect(pom).toContain(`<artifactId>cryo-hooks</artifactId>\n  <version>${version}</version>`);
    const { stdout: module } = await run('jar', ['--describe-module', '--file', jar]);
    expect(module.trim().split('\n').slice(1).sort()).toEqual(['exports dev.cryo.hooks', 'requires java.base mandated', 'requires java.logging']);
    expect(module).toMatch(new RegExp(`^dev\\.cryo\\.hooks@${version.replaceAll('.', '\\.')} `));
    const { stdout: list } = await run('jar', ['--list', '--file', jar]);
    const entries = list.trim().split('\n');
    expect(entries.filter((e) => e.endsWith('.class') && !/^dev\/cryo\/hooks\/[^/]+\.class$/.test(e))).toEqual(['module-info.class']);
    expect(entries).toEqual(expect.arrayContaining(['dev/cryo/hooks/CheckpointHooks.class', 'META-INF/maven/dev.cryo/cryo-hooks/pom.xml', 'META-INF/maven/dev.cryo/cryo-hooks/pom.properties']));
    expect(existsSync(path.join(build, `cryo-hooks-${version}-sources.jar`))).toBe(true);
  });

  it('serves an application that requires it as a module', async () => {
    const src = path.join(app, 'modular/src');
    await mkdir(path.join(src, 'app'), { recursive: true });
    await writeFile(path.join(src, 'module-info.java'), 'module app { requires dev.cryo.hooks; }\n');
    await writeFile(
      path.join(src, 'app/Main.java'),
      `package app;
       import dev.cryo.hooks.*;
       import java.nio.file.Path;
       import java.util.Map;
       import java.util.TreeSet;
       public final class Main {
         public static void main(String[] args) {
           Module module = CheckpointHooks.class.getModule();
           CheckpointHooks hooks = CheckpointHooks.create(Options.fromEnvironment(Map.of()).withSocketPath(Path.of(args[0])));
           Registration registration = hooks.register(CheckpointHook.named("pool").afterRestore(ctx -> {}).build());
           hooks.start();
           hooks.stop();
           registration.close();
           System.out.println(Json.write(Map.of(
               "module", module.getName(),
               "version", module.getDescriptor().version().map(Object::toString).orElse(""),
               "packages", new TreeSet<>(module.getPackages()),
               "outcome", new HookContext("shop/c", "", null, 1, Outcome.RESTORED).outcome().wireName())));
         }
       }
`,
    );
    const classes = path.join(app, 'modular/classes');
    await run('javac', ['--release', '17', '-Werror', '--module-path', jar, '-d', classes, path.join(src, 'module-info.java'), path.join(src, 'app/Main.java')]);
    const { stdout } = await run('java', ['--module-path', `${jar}:${classes}`, '--module', 'app/app.Main', path.join(app, 'no-agent.sock')], { timeout: 60_000 });
    expect(JSON.parse(stdout)).toEqual({ module: 'dev.cryo.hooks', version, packages: ['dev.cryo.hooks'], outcome: 'restored' });
  });

  it('serves an application on the class path, as before', async () => {
    const src = path.join(app, 'classpath/src/app/Plain.java');
    await mkdir(path.dirname(src), { recursive: true });
    await writeFile(
      src,
      `package app;
       import dev.cryo.hooks.*;
       public final class Plain {
         public static void main(String[] args) {
           CheckpointHooks.global().register(CheckpointHook.named("x").beforeCheckpoint(ctx -> {}).build());
           System.out.println(Json.write(java.util.List.of(
               String.valueOf(CheckpointHooks.class.getModule().isNamed()),
               CheckpointHooks.class.getPackage().getImplementationVersion())));
         }
       }
`,
    );
    const classes = path.join(app, 'classpath/classes');
    await run('javac', ['--release', '17', '-Werror', '--class-path', jar, '-d', classes, src]);
    const { stdout } = await run('java', ['--class-path', `${jar}:${classes}`, 'app.Plain'], { timeout: 60_000 });
    expect(JSON.parse(stdout)).toEqual(['false', version]);
  });
});
