/**
 * The TLS settings of lib/config.ts reach the options every Temporal connection is made with
 * (lib/temporalConnection.ts). Needs no service; tls.integration.test.ts connects with them for real.
 *
 *   node --import tsx --test test/temporal/connectionOptions.test.ts
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../lib/config';
import { temporalConnectionOptions } from '../../lib/temporalConnection';

const TLS_VARIABLES = [
  'FERRY_TEMPORAL_TLS',
  'FERRY_TEMPORAL_TLS_CERT',
  'FERRY_TEMPORAL_TLS_KEY',
  'FERRY_TEMPORAL_TLS_CA',
  'FERRY_TEMPORAL_TLS_SERVER_NAME',
] as const;

const dir = mkdtempSync(path.join(tmpdir(), 'ferry-temporal-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function pemFile(name: string, label: string): { file: string; bytes: Buffer } {
  const bytes = Buffer.from(
    `-----BEGIN ${label}-----\n${Buffer.from(`${name} ${dir}`).toString('base64')}\n-----END ${label}-----\n`,
  );
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return { file, bytes };
}

/** loadConfig with exactly `vars` of the TLS variables set (the others unset), restored afterwards. */
function configWith(vars: Partial<Record<(typeof TLS_VARIABLES)[number], string>>) {
  const saved = TLS_VARIABLES.map((name) => [name, process.env[name]] as const);
  for (const name of TLS_VARIABLES) delete process.env[name];
  Object.assign(process.env, vars);
  try {
    return loadConfig();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe('Temporal connection options', () => {
  test('no TLS variable: plain gRPC to the configured address, as the dev stack speaks', () => {
    const config = configWith({});
    assert.equal(config.temporal.tls, undefined);
    assert.deepEqual(temporalConnectionOptions(config.temporal), { address: config.temporal.address });
    assert.equal(configWith({ FERRY_TEMPORAL_TLS: 'off' }).temporal.tls, undefined);
  });

  test('certificate, key, CA and server name reach the connection as mTLS', () => {
    const cert = pemFile('client.crt', 'CERTIFICATE');
    const key = pemFile('client.key', 'PRIVATE KEY');
    const ca = pemFile('ca.crt', 'CERTIFICATE');
    const config = configWith({
      FERRY_TEMPORAL_TLS_CERT: cert.file,
      FERRY_TEMPORAL_TLS_KEY: key.file,
      FERRY_TEMPORAL_TLS_CA: ca.file,
      FERRY_TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    const options = temporalConnectionOptions(config.temporal);
    assert.equal(options.address, config.temporal.address);
    assert.deepEqual(options.tls, {
      serverNameOverride: 'temporal.internal',
      serverRootCACertificate: ca.bytes,
      clientCertPair: { crt: cert.bytes, key: key.bytes },
    });
  });

  test('FERRY_TEMPORAL_TLS=on alone: TLS with the system roots and no client certificate', () => {
    assert.deepEqual(temporalConnectionOptions(configWith({ FERRY_TEMPORAL_TLS: 'on' }).temporal).tls, {});
    const ca = pemFile('only-ca.crt', 'CERTIFICATE');
    assert.deepEqual(temporalConnectionOptions(configWith({ FERRY_TEMPORAL_TLS_CA: ca.file }).temporal).tls, {
      serverRootCACertificate: ca.bytes,
    });
  });

  test('settings that cannot work are refused, naming the variable', () => {
    const cert = pemFile('lonely.crt', 'CERTIFICATE');
    assert.throws(
      () => configWith({ FERRY_TEMPORAL_TLS_CERT: cert.file }),
      /FERRY_TEMPORAL_TLS_CERT and FERRY_TEMPORAL_TLS_KEY go together/,
    );
    assert.throws(() => configWith({ FERRY_TEMPORAL_TLS: 'yes' }), /FERRY_TEMPORAL_TLS must be on or off/);
    assert.throws(
      () => configWith({ FERRY_TEMPORAL_TLS: 'off', FERRY_TEMPORAL_TLS_CA: cert.file }),
      /FERRY_TEMPORAL_TLS=off, yet/,
    );
    const missing = configWith({ FERRY_TEMPORAL_TLS_CA: path.join(dir, 'no-such-ca.crt') });
    assert.throws(() => temporalConnectionOptions(missing.temporal), /FERRY_TEMPORAL_TLS_CA: cannot read .*ENOENT/);
  });
});
