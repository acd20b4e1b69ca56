/**
 * A token service for a test registry, as Docker's token authentication specifies: GET /token with
 * service and scope parameters (and Basic credentials) answers a JWT the registry trusts, signed RS256
 * with a key whose self-signed certificate (made by openssl) is the registry's rootcertbundle.
 *
 * It grants what the scopes ask only to the right user and password; anonymous requests and wrong
 * passwords get 401. Every request is recorded (service, scopes, whether credentials came).
 */
import { execFile } from 'node:child_process';
import { randomBytes, sign, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TOKEN_SERVICE = 'ferry-test-registry';
export const TOKEN_ISSUER = 'ferry-test-token-issuer';

export interface TokenRequest {
  service: string | null;
  scopes: string[];
  account: string | null;
  withCredentials: boolean;
  granted: boolean;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export class TokenServer {
  private constructor(
    readonly requests: TokenRequest[],
    private readonly server: http.Server,
    readonly realm: string,
    /** The registry's rootcertbundle. */
    readonly certFile: string,
  ) {}

  /** `dir` receives the key and certificate. */
  static async start(dir: string, user: { username: string; password: string }): Promise<TokenServer> {
    const keyFile = path.join(dir, 'token.key');
    const certFile = path.join(dir, 'token.crt');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=ferry-test-token-issuer',
    ]);
    const key = await readFile(keyFile, 'utf8');
    const certDer = new X509Certificate(await readFile(certFile)).raw.toString('base64');
    const expected = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    const requests: TokenRequest[] = [];

    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://token');
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
      const withCredentials = req.headers.authorization !== undefined;
      const granted = req.headers.authorization === expected;
      requests.push({
        service: url.searchParams.get('service'),
        scopes,
        account: url.searchParams.get('account'),
        withCredentials,
        granted,
      });
      if (url.pathname !== '/token' || !granted) {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end('{"details":"wrong user or password"}');
        return;
      }
      const now = Math.floor(Date.now() / 1000);
      const access = scopes.map((scope) => {
        const [type, ...rest] = scope.split(':');
        const actions = rest.pop() ?? '';
        return { type, name: rest.join(':'), actions: actions.split(',').filter(Boolean) };
      });
      const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer] }));
      const payload = base64url(
        JSON.stringify({
          iss: TOKEN_ISSUER,
          sub: user.username,
          aud: url.searchParams.get('service') ?? '',
          exp: now + 300,
          nbf: now - 10,
          iat: now,
          jti: randomBytes(8).toString('hex'),
          access,
        }),
      );
      const signature = sign('sha256', Buffer.from(`${header}.${payload}`), key).toString('base64url');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: `${header}.${payload}.${signature}`, expires_in: 300 }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TokenServer(
      requests,
      server,
      `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
      certFile,
    );
  }

  /** The registry config's `auth:` lines for this service. */
  registryAuthConfig(): string[] {
    return [
      '  token:',
      `    realm: ${this.realm}`,
      `    service: ${TOKEN_SERVICE}`,
      `    issuer: ${TOKEN_ISSUER}`,
      `    rootcertbundle: ${this.certFile}`,
    ];
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
