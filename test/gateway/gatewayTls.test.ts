/**
 * The gateway over TLS when it is given a certificate and key: the control API and inference answer on
 * https with that certificate, and a plain-HTTP request to the port is not served.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import * as https from 'node:https';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { MLP_V1, modelDirWith, SAMPLE_INPUT, startTestGateway, tempDir } from './gatewayFixture';

const run = promisify(execFile);

/** A request over https that trusts only `ca`. */
function request(
  url: string,
  ca: Buffer,
  method = 'GET',
  body?: unknown,
): Promise<{ status: number; json: any; peerCert: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      url,
      { method, ca, headers: data ? { 'content-type': 'application/json' } : {} },
      (res) => {
        const cert = (res.socket as import('node:tls').TLSSocket).getPeerCertificate();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({
            status: res.statusCode ?? 0,
            json: text ? JSON.parse(text) : undefined,
            peerCert: String(cert.subject.CN),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

test('with a certificate and key the gateway serves its control API and inference over https only', async () => {
  const dir = await tempDir('gw-tls');
  await run(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=ferry-gateway-test',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
    ],
    { cwd: dir },
  );
  const cert = await readFile(path.join(dir, 'cert.pem'));
  const fx = await startTestGateway('gw-tls', {
    standby: false,
    tls: { cert, key: await readFile(path.join(dir, 'key.pem')) },
  });
  try {
    assert.match(fx.gateway.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const health = await request(`${fx.gateway.url}/_ferry/health`, cert);
    assert.deepEqual([health.status, health.json, health.peerCert], [200, { ok: true }, 'ferry-gateway-test']);
    const modelDir = await modelDirWith(MLP_V1, fx.dir);
    const put = await request(`${fx.gateway.url}/_ferry/deployments/tls`, cert, 'PUT', {
      model: 'mlp',
      replicas: 1,
      modelDir,
    });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.match(put.json.endpoint, /^https:/);
    const answer = await request(`${put.json.endpoint}/v2/models/mlp/infer`, cert, 'POST', {
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: SAMPLE_INPUT }],
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.deepEqual(answer.json.outputs[0].shape, [1, 3]);
    await assert.rejects(fetch(`${fx.gateway.url.replace('https:', 'http:')}/_ferry/health`), 'no plain HTTP');
  } finally {
    // The fixture's cleanup speaks plain fetch, which does not trust this certificate: delete here.
    await request(`${fx.gateway.url}/_ferry/deployments/tls`, cert, 'DELETE');
    await fx.gateway.close({ stopReplicas: true });
    await rm(fx.dir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
});
