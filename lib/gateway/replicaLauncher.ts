/**
 * The pre-started ("standby") replica process. The gateway keeps one node process running this
 * program, already booted, waiting on stdin; a cold start hands it the replica to become:
 *
 *   {"script": "/abs/server.js", "args": [], "env": {...}, "cwd": "/abs", "cacheDir": "/abs"}\n
 *
 * It then takes that environment, argv, process title and working directory, and runs the script as the main
 * module — compiled with a V8 code cache kept per script file, so the bundle is not parsed and
 * compiled from scratch on every cold start. From then on it is the replica: the gateway records its
 * pid like any other. If stdin ends before a command (the gateway went away), it exits.
 *
 * Inside a standby container (standbyContainer.ts) there is no stdin to write to: with
 * FERRY_STANDBY_COMMAND_SOCKET=<path> it listens on that Unix socket (in the container's bind-mounted
 * socket folder) and takes the first line of the first connection as the command instead. A command
 * with `inheritEnv` adds its env to the one it booted with (the container's) rather than replacing it.
 *
 * With FERRY_STANDBY_PREWARM=<script> (and FERRY_STANDBY_CACHE_DIR) in its boot environment, it loads
 * that script ahead of the command: a script that knows the standby hook (runtime/server/main.ts)
 * evaluates its imports and hands back its entry, which the command then starts — if it names the same
 * script; another script runs as usual.
 *
 * Built by esbuild into the gateway's state dir and run with plain node (no TypeScript loader).
 * Only node builtins here: whatever the script needs, it loads from its own location.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import * as vm from 'node:vm';

export interface LaunchCommand {
  script: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** Where V8 code caches are kept; none when absent. */
  cacheDir?: string;
  /** Keep the boot environment (without the FERRY_STANDBY_ settings) under `env`. */
  inheritEnv?: boolean;
}

interface ModuleInternals {
  _initPaths(): void;
  _nodeModulePaths(dir: string): string[];
  _cache: Record<string, unknown>;
  _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
  _extensions: unknown;
  wrap(source: string): string;
}

/** The first line of the first connection to a Unix socket at `socketPath`, which then goes away. */
function readCommandFromSocket(socketPath: string): Promise<LaunchCommand | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer((conn) => {
      let text = '';
      conn.setEncoding('utf8');
      conn.on('data', (chunk: string) => {
        text += chunk;
        const nl = text.indexOf('\n');
        if (nl === -1) return;
        conn.end();
        server.close();
        try {
          rmSync(socketPath, { force: true });
        } catch {
          /* the folder's owner may tidy it */
        }
        resolve(JSON.parse(text.slice(0, nl)) as LaunchCommand);
      });
      conn.on('error', () => undefined);
    });
    server.on('error', (err) => {
      process.stderr.write(`${new Date().toISOString()} ferry standby launcher: ${socketPath}: ${err.message}\n`);
      resolve(undefined);
    });
    server.listen(socketPath);
  });
}

function readCommand(): Promise<LaunchCommand | undefined> {
  return new Promise((resolve) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl !== -1) {
        process.stdin.removeAllListeners('data');
        process.stdin.removeAllListeners('end');
        process.stdin.destroy();
        resolve(JSON.parse(text.slice(0, nl)) as LaunchCommand);
      }
    });
    process.stdin.on('end', () => resolve(undefined));
    process.stdin.on('error', () => resolve(undefined));
  });
}

/** Builtins an inference server loads at once: loaded while waiting, not during the cold start. */
function preloadBuiltins(): void {
  for (const name of [
    'http',
    'net',
    'crypto',
    'zlib',
    'stream',
    'url',
    'util',
    'events',
    'fs/promises',
    'os',
    'perf_hooks',
    'async_hooks',
    'buffer',
    'string_decoder',
    'diagnostics_channel',
  ]) {
    try {
      require(`node:${name}`);
    } catch {
      /* not in this node version: fine */
    }
  }
}

function cacheKey(file: string): string {
  const s = statSync(file);
  return createHash('sha256')
    .update(`${file}\0${s.size}\0${s.mtimeMs}\0${process.version}\0${process.arch}`)
    .digest('hex')
    .slice(0, 32);
}

/**
 * Runs `file` as the main module, as `node file` would, compiling it with a code cache when there is
 * one. Returns what happened to the cache: used, rejected (stale: rewritten), or none (written).
 */
function runMain(file: string, cacheDir: string | undefined): 'used' | 'rejected' | 'none' {
  const M = Module as unknown as ModuleInternals & typeof Module;
  const source = readFileSync(file, 'utf8').replace(/^#!.*/, '');
  const cacheFile = cacheDir ? path.join(cacheDir, `${cacheKey(file)}.v8cache`) : undefined;
  let cachedData: Buffer | undefined;
  if (cacheFile) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      cachedData = undefined;
    }
  }
  const importModuleDynamically = (vm as unknown as { constants?: { USE_MAIN_CONTEXT_DEFAULT_LOADER?: symbol } })
    .constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  const script = new vm.Script(M.wrap(source), {
    filename: file,
    cachedData,
    ...(importModuleDynamically ? { importModuleDynamically: importModuleDynamically as never } : {}),
  });

  const mod = new Module(file) as Module & { filename: string; paths: string[]; loaded: boolean; id: string };
  mod.filename = file;
  mod.id = '.';
  mod.paths = M._nodeModulePaths(path.dirname(file));
  M._cache[file] = mod;
  (process as unknown as { mainModule: unknown }).mainModule = mod;
  const localRequire = ((id: string) => mod.require(id)) as NodeJS.Require;
  Object.assign(localRequire, {
    resolve: Object.assign((request: string, options?: unknown) => M._resolveFilename(request, mod, false, options), {
      paths: () => mod.paths,
    }),
    main: mod,
    cache: M._cache,
    extensions: M._extensions,
  });

  const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => void;
  wrapper.call(mod.exports, mod.exports, localRequire, mod, file, path.dirname(file));
  mod.loaded = true;

  if (cacheFile && (!cachedData || script.cachedDataRejected)) {
    // After start-up, so the cache also holds the functions that ran (lazily compiled ones included).
    setTimeout(() => {
      try {
        mkdirSync(path.dirname(cacheFile), { recursive: true });
        const tmp = `${cacheFile}.${process.pid}.tmp`;
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        /* a cache is an optimization */
      }
    }, 1000).unref();
  }
  return !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'used';
}

/** The entry a script built for it hands over instead of running (runtime/server/main.ts's STANDBY_ENTRY). */
const STANDBY_ENTRY = Symbol.for('ferry.standbyEntry');
type Entry = (launchedAt: number) => void;

/**
 * Loads `file` as the main module with the standby hook set: a script that knows the hook (the
 * inference server) evaluates its imports and hands back its entry instead of starting; any other
 * script just runs. Returns the entry, if one was handed back.
 */
function loadMain(file: string, cacheDir: string | undefined): { entry: Entry | undefined; cache: string } {
  let entry: Entry | undefined;
  (globalThis as Record<symbol, unknown>)[STANDBY_ENTRY] = { register: (e: Entry) => (entry = e) };
  try {
    const cache = runMain(file, cacheDir);
    return { entry, cache };
  } finally {
    delete (globalThis as Record<symbol, unknown>)[STANDBY_ENTRY];
  }
}

async function main(): Promise<void> {
  process.title = 'ferry-standby-replica';
  preloadBuiltins();
  // Load the script the next replica most likely runs now, while nobody waits (its imports —
  // onnxruntime, OpenTelemetry — are a good part of a cold start); it starts when the command comes.
  // This entrypoint's own settings come from the gateway (standbyProcess.ts) in its boot environment;
  // it is a builtin-only bundle, so it reads them here rather than through lib/config.ts.
  const prewarm = process.env.FERRY_STANDBY_PREWARM;
  let prewarmed: { entry: Entry | undefined; cache: string } | undefined;
  if (prewarm) {
    const t0 = performance.now();
    try {
      prewarmed = loadMain(prewarm, process.env.FERRY_STANDBY_CACHE_DIR || undefined);
      process.stdout.write(
        `${new Date().toISOString()} ferry standby process ${process.pid} loaded ${prewarm} in advance (code cache ${prewarmed.cache}, ${Math.round(performance.now() - t0)} ms)\n`,
      );
    } catch (err) {
      process.stdout.write(
        `${new Date().toISOString()} ferry standby process ${process.pid} could not load ${prewarm} in advance: ${(err as Error).stack ?? err}\n`,
      );
    }
  }
  const commandSocket = process.env.FERRY_STANDBY_COMMAND_SOCKET;
  const command = await (commandSocket ? readCommandFromSocket(commandSocket) : readCommand());
  if (!command) process.exit(0);
  const launchedAt = performance.now();
  process.chdir(command.cwd);
  const booted = command.inheritEnv
    ? Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FERRY_STANDBY_')))
    : {};
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, booted, command.env);
  (Module as unknown as ModuleInternals)._initPaths(); // NODE_PATH of the replica's environment
  process.argv = [process.execPath, command.script, ...command.args];
  // What `ps` shows: the same command line as a replica started directly (the gateway reserved room).
  process.title = process.argv.join(' ');
  if (prewarmed?.entry && prewarm === command.script) {
    process.stdout.write(
      `${new Date().toISOString()} ferry standby process ${process.pid} starts ${command.script} (loaded in advance)\n`,
    );
    prewarmed.entry(launchedAt);
    return;
  }
  const { entry, cache } = loadMain(command.script, command.cacheDir);
  process.stdout.write(
    `${new Date().toISOString()} ferry standby process ${process.pid} ran ${command.script} (code cache ${cache}, ${Math.round(performance.now() - launchedAt)} ms)\n`,
  );
  entry?.(launchedAt);
}

main().catch((err: Error) => {
  process.stderr.write(`${new Date().toISOString()} ferry standby launcher: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
