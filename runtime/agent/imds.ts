/**
 * The EC2 instance metadata service, version 2: a session token first (PUT /latest/api/token), then
 * every read with that token. Only what the agent needs: the interruption notice, the rebalance
 * recommendation, and the instance's id and zone. A path that does not exist (no notice yet) is 404.
 */

const TOKEN_TTL_SECONDS = 21_600;

export interface MetadataAnswer {
  status: number;
  body: string;
}

export class MetadataClient {
  private token: string | undefined;
  private tokenExpiresAt = 0;

  constructor(
    private readonly baseUrl = 'http://169.254.169.254',
    private readonly timeoutMs = 2000,
  ) {}

  /** GET /latest/meta-data/<path>; a rejected token (401) is renewed once. */
  async get(path: string): Promise<MetadataAnswer> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.sessionToken();
      const res = await fetch(`${this.baseUrl}/latest/meta-data/${path}`, {
        headers: { 'x-aws-ec2-metadata-token': token },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const body = await res.text();
      if (res.status === 401 && attempt === 0) {
        this.token = undefined;
        continue;
      }
      return { status: res.status, body };
    }
  }

  /** The body of a path that must exist (instance-id, placement/availability-zone). */
  async required(path: string): Promise<string> {
    const answer = await this.get(path);
    if (answer.status !== 200) throw new Error(`metadata ${path}: HTTP ${answer.status}`);
    return answer.body.trim();
  }

  private async sessionToken(): Promise<string> {
    // Renewed a minute before it expires, so a poll never carries an expired one.
    if (this.token && Date.now() < this.tokenExpiresAt - 60_000) return this.token;
    const res = await fetch(`${this.baseUrl}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SECONDS) },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (res.status !== 200) throw new Error(`metadata token: HTTP ${res.status}`);
    this.token = (await res.text()).trim();
    this.tokenExpiresAt = Date.now() + TOKEN_TTL_SECONDS * 1000;
    return this.token;
  }
}
