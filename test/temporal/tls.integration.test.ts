/**
 * Ferry's Temporal connections with the mTLS settings, for real. The dev server speaks no TLS, so the
 * test puts a TLS terminator in front of it that asks for a client certificate from its own CA (made with
 * openssl) and passes the decrypted HTTP/2 on: the CLI's and API's client connection and the worker's
 * native connection must get through with FERRY_TEMPORAL_TLS_*, and be turned away without a certificate.
 *
 *   node --import tsx --test test/temporal/tls.integration.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { FerryClient } from '../../client/sdk';
import { loadConfig } from '../../lib/config';
import { temporalConnectionOptions } from '../../lib/temporalConnection';

const run = promisify(execFile);
const SERVER_NAME = 'temporal.ferry.test';
const upstream = loadConfig().temporal.address;

let dir: string;
let proxy: tls.Server;
let address: string;
/** Connections whose client certificate the terminator accepted. */
let authorized = 0;

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** A self-signed CA: `<ca>.crt` and `<ca>.key`. */
async function makeCa(ca: string): Promise<void> {
  await openssl(
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'],
    ...['-subj', `/CN=${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.crt`],
  );
}

/** A certificate `<name>.crt` for `usage` (serverAuth or clientAuth), signed by `ca`. */
async function makeCert(ca: string, name: string, usage: string, san: string): Promise<void> {
  await openssl(
    ...['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`],
    ...['-keyout', `${name}.key`, '-out', `${name}.csr`],
  );
  await writeFile(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\n`);
  await openssl(
    ...['x509', '-req', '-days', '2', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`],
    ...['-CAcreateserial', '-extfile', `${name}.ext`, '-out', `${name}.crt`],
  );
}

const file = (name: string) => path.join(dir, name);

/** Runs `fn` with FERRY_TEMPORAL_ADDRESS at the terminator and `vars` set, for loadConfig to see. */
async function withTemporalEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const all = { FERRY_TEMPORAL_ADDRESS: address, ...vars };
  const saved = Object.keys(all).map((name) => [name, process.env[name]] as const);
  Object.assign(process.env, all);
  try {
    return await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ferry-temporal-mtls-'));
  await makeCa('ca');
  await makeCert('ca', 'server', 'serverAuth', `DNS:${SERVER_NAME}`);
  await makeCert('ca', 'client', 'clientAuth', 'DNS:ferry-client');
  await makeCa('other-ca');
  await makeCert('other-ca', 'stranger', 'clientAuth', 'DNS:stranger');

  const [host, port] = [
    upstream.slice(0, upstream.lastIndexOf(':')),
    Number(upstream.slice(upstream.lastIndexOf(':') + 1)),
  ];
  proxy = tls.createServer(
    {
      key: await readFile(file('server.key')),
      cert: await readFile(file('server.crt')),
      ca: await readFile(file('ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      authorized += 1;
      const backend = net.connect(port, host);
      socket.pipe(backend).pipe(socket);
      const close = () => {
        socket.destroy();
        backend.destroy();
      };
      socket.on('error', close);
      backend.on('error', close);
      socket.on('close', close);
      backend.on('close', close);
    },
  );
  proxy.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const MTLS = () => ({
  FERRY_TEMPORAL_TLS_CERT: file('client.crt'),
  FERRY_TEMPORAL_TLS_KEY: file('client.key'),
  FERRY_TEMPORAL_TLS_CA: file('ca.crt'),
  FERRY_TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
});

describe('Temporal over mTLS', () => {
  test("the CLI's and API's client (FerryClient.connect) gets through with the settings", async () => {
    const before = authorized;
    await withTemporalEnv(MTLS(), async () => {
      const ferry = await FerryClient.connect(loadConfig());
      try {
        const info = await ferry.temporal.workflowService.getSystemInfo({});
        assert.ok(info.serverVersion, 'the server answered through the TLS terminator');
      } finally {
        await ferry.close();
      }
    });
    assert.ok(authorized > before, 'the connection presented the client certificate');
  });

  test("the worker's native connection gets through with the same settings", async () => {
    const before = authorized;
    await withTemporalEnv(MTLS(), async () => {
      const connection = await NativeConnection.connect(temporalConnectionOptions(loadConfig().temporal));
      await connection.close();
    });
    assert.ok(authorized > before);
  });

  test('without a client certificate, or with one from another CA, the connection is refused', async () => {
    const before = authorized;
    const { FERRY_TEMPORAL_TLS_CA, FERRY_TEMPORAL_TLS_SERVER_NAME } = MTLS();
    const refused: Record<string, string>[] = [
      { FERRY_TEMPORAL_TLS_CA, FERRY_TEMPORAL_TLS_SERVER_NAME },
      {
        FERRY_TEMPORAL_TLS_CERT: file('stranger.crt'),
        FERRY_TEMPORAL_TLS_KEY: file('stranger.key'),
        FERRY_TEMPORAL_TLS_CA,
        FERRY_TEMPORAL_TLS_SERVER_NAME,
      },
    ];
    for (const vars of refused) {
      await withTemporalEnv(vars, async () => {
        const options = temporalConnectionOptions(loadConfig().temporal);
        await assert.rejects(Connection.connect({ ...options, connectTimeout: '3s' }));
      });
    }
    assert.equal(authorized, before, 'no connection got past the TLS handshake');
  });

  test('plain gRPC to a TLS endpoint fails rather than falling back', async () => {
    await withTemporalEnv({}, async () => {
      await assert.rejects(
        Connection.connect({ ...temporalConnectionOptions(loadConfig().temporal), connectTimeout: '3s' }),
      );
    });
  });
});
