import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  componentLogger,
  debugLogger,
  errorFields,
  getDefaultLogger,
  type Logger,
  noopLogger,
  parseDebugEnv,
  SocketClosedError,
  setDefaultLogger,
} from '../src/index.js';

afterEach(() => setDefaultLogger(undefined));

describe('parseDebugEnv', () => {
  it('reads components separated by commas or spaces, case-insensitively', () => {
    const s = parseDebugEnv('transport, Server  worker');
    expect(s?.all).toBe(false);
    expect([...(s?.components ?? [])].sort()).toEqual(['server', 'transport', 'worker']);
  });

  it('* (or ffnet, or all) selects every component', () => {
    for (const v of ['*', 'ffnet', 'all', 'transport,*']) expect(parseDebugEnv(v)?.all, v).toBe(true);
  });

  it('NODE_DEBUG=ffnet among other names selects every component; other NODE_DEBUG names do not', () => {
    expect(parseDebugEnv(undefined, 'net,ffnet,http')?.all).toBe(true);
    expect(parseDebugEnv(undefined, 'net,http')).toBeUndefined();
    expect(parseDebugEnv(undefined, 'ffnetx')).toBeUndefined();
  });

  it('unset or blank selects nothing', () => {
    expect(parseDebugEnv(undefined)).toBeUndefined();
    expect(parseDebugEnv('')).toBeUndefined();
    expect(parseDebugEnv(' , ')).toBeUndefined();
  });
});

describe('debugLogger', () => {
  function capture(opts: Parameters<typeof debugLogger>[0] = {}): { log: Logger; lines: string[] } {
    const lines: string[] = [];
    return { log: debugLogger({ ...opts, write: (l) => lines.push(l) }), lines };
  }

  it('writes one JSON object per line with level, component, fields and msg; errors as plain objects', () => {
    const { log, lines } = capture();
    const err = new SocketClosedError('connection closed by peer', { peer: 'tcp://10.0.0.1:8000' });
    log.child({ component: 'transport' }).debug({ peer: 'tcp://10.0.0.1:8000', err, big: 5n }, 'connection closed');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({
      level: 'debug',
      component: 'transport',
      peer: 'tcp://10.0.0.1:8000',
      msg: 'connection closed',
      big: '5',
      err: { type: 'SocketClosedError', code: 2013, peer: 'tcp://10.0.0.1:8000' },
    });
    expect(rec.err.message).toContain('connection closed by peer');
    expect(Number.isNaN(Date.parse(rec.time))).toBe(false);
  });

  it('logs only the selected components, at debug and above', () => {
    const { log, lines } = capture({ select: parseDebugEnv('server') });
    const server = log.child({ component: 'server' });
    const transport = log.child({ component: 'transport' });
    expect(server.isLevelEnabled('debug')).toBe(true);
    expect(server.isLevelEnabled('trace')).toBe(false);
    expect(transport.isLevelEnabled('error')).toBe(false);
    transport.warn({}, 'not selected');
    server.trace({}, 'below debug');
    server.info({ a: 1 }, 'selected');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['selected']);
  });

  it('a field that cannot be serialized still gives a line, not a throw', () => {
    const { log, lines } = capture();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => log.warn({ cyclic }, 'odd')).not.toThrow();
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: 'odd' });
    expect(JSON.parse(lines[0]!).logError).toBeTruthy();
  });
});

describe('default logger', () => {
  it('is the no-op logger without FFNET_DEBUG: every level off, child is itself', () => {
    // This test process runs without FFNET_DEBUG (vitest inherits the shell's env; CI sets none).
    if (process.env.FFNET_DEBUG === undefined && !/\bffnet\b/i.test(process.env.NODE_DEBUG ?? '')) expect(getDefaultLogger()).toBe(noopLogger);
    for (const l of ['trace', 'debug', 'info', 'warn', 'error'] as const) expect(noopLogger.isLevelEnabled(l)).toBe(false);
    expect(noopLogger.child({ component: 'x' })).toBe(noopLogger);
  });

  it('setDefaultLogger replaces it for componentLogger; an explicit logger wins; undefined restores', () => {
    const seen: unknown[] = [];
    const root = debugLogger({ write: (l) => seen.push(JSON.parse(l)) });
    setDefaultLogger(root);
    componentLogger('worker').info({ n: 1 }, 'via default');
    const own: unknown[] = [];
    componentLogger('worker', debugLogger({ write: (l) => own.push(JSON.parse(l)) })).info({ n: 2 }, 'via option');
    expect(seen).toMatchObject([{ component: 'worker', n: 1, msg: 'via default' }]);
    expect(own).toMatchObject([{ component: 'worker', n: 2, msg: 'via option' }]);
    setDefaultLogger(undefined);
    expect(getDefaultLogger()).not.toBe(root);
  });

  it('errorFields keeps type, message, code, peer and the cause, never other properties', () => {
    const e = Object.assign(new SocketClosedError('gone', { peer: 'p', cause: new Error('inner') }), { payload: 'SECRET' });
    const f = errorFields(e);
    expect(f).toMatchObject({ type: 'SocketClosedError', code: 2013, peer: 'p', cause: 'Error: inner' });
    expect(JSON.stringify(f)).not.toContain('SECRET');
    expect(errorFields('plain')).toEqual({ message: 'plain' });
  });
});

describe('FFNET_DEBUG in a child process', () => {
  // The built package, as a user imports it: logs a debug record from the `transport` component.
  const script = `import { componentLogger } from '@ffnet/common';
componentLogger('transport').debug({ peer: 'tcp://1.2.3.4:5' }, 'connection opened');
componentLogger('server').debug({}, 'server record');`;
  const cwd = fileURLToPath(new URL('..', import.meta.url));

  function run(env: Record<string, string>): { stderr: string; stdout: string } {
    const base = { ...process.env };
    delete base.FFNET_DEBUG;
    delete base.NODE_DEBUG;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, env: { ...base, ...env }, encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    return { stderr: r.stderr, stdout: r.stdout };
  }

  it('writes nothing without it', () => {
    const { stderr, stdout } = run({});
    expect(stderr).toBe('');
    expect(stdout).toBe('');
  });

  it('FFNET_DEBUG=transport writes the transport record as a JSON line on stderr, and not the server one', () => {
    const { stderr, stdout } = run({ FFNET_DEBUG: 'transport' });
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'debug', component: 'transport', peer: 'tcp://1.2.3.4:5', msg: 'connection opened' });
  });

  it('NODE_DEBUG=ffnet writes every component', () => {
    const { stderr } = run({ NODE_DEBUG: 'ffnet' });
    const comps = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).component);
    expect(comps).toEqual(['transport', 'server']);
  });

  it('the package resolves to the build being tested', () => {
    // Guards the three tests above against running an older build: the export they use must exist.
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', "import * as c from '@ffnet/common'; console.log(typeof c.componentLogger)"], {
      cwd,
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('function');
  });
});
