/**
 * A blob's upload in chunks, as the distribution API allows: PATCH <session> with Content-Range
 * `start-end` for each chunk, then PUT <session>?digest=... to commit it.
 *
 * After a dropped connection, a timeout, a 5xx or a 416 the registry is asked where the session stands
 * (GET <session>: 204 with `Range: 0-<last byte>`), and the upload goes on from there. A registry that no
 * longer knows the session answers 404 (Debian's distribution does so once a chunk arrived only in
 * part: its session state no longer matches what it stored), and the upload starts again in a new
 * session. The faults in a row are bounded by the client's retry policy; a chunk that goes through
 * resets the count. Nothing is tagged here: a failed upload leaves no manifest pointing at the blob.
 */
import { createReadStream } from 'node:fs';
import type * as http from 'node:http';
import type { BlobSource, RegistryClient } from './registry';
import { pushScope } from './registryAuth';
import { RegistryError } from './registryError';
import { isTransientNetworkError, isTransientStatus, waitBeforeRetry } from './retry';

export const DEFAULT_CHUNK_BYTES = 16 << 20;

export interface BlobProgress {
  digest: string;
  size: number;
  /** Bytes the registry has confirmed for this blob. */
  sentBytes: number;
  /**
   * present: the repository had it; mounted: taken from another repository; uploading: a chunk went
   * through; resuming: after a fault, going on from sentBytes; pushed: committed.
   */
  state: 'present' | 'mounted' | 'uploading' | 'resuming' | 'pushed';
}

/** A fault a retry may get past, with what the registry said, if anything. */
class TransientUploadFault extends Error {}

/** `0-499` → 500 (the next offset); absent or malformed → undefined. */
export function nextOffsetFromRange(range: string | string[] | undefined): number | undefined {
  const value = Array.isArray(range) ? range[0] : range;
  const m = value ? /^(?:bytes=)?0-(\d+)$/.exec(value.trim()) : null;
  if (!m) return undefined;
  const last = Number(m[1]);
  // "0-0" is what a registry reports for an empty session too (it cannot say "no bytes" in a Range).
  return last === 0 ? 0 : last + 1;
}

function locationOf(res: http.IncomingMessage, current: URL): URL {
  const location = res.headers.location;
  return location ? new URL(location, current) : current;
}

/** The session URL with `digest=` added; its query (distribution's _state) is kept byte for byte. */
function commitUrl(session: URL, digest: string): URL {
  return new URL(`${session.href}${session.search ? '&' : '?'}digest=${encodeURIComponent(digest)}`);
}

export async function uploadBlob(
  client: RegistryClient,
  repository: string,
  blob: BlobSource,
  firstSession: URL,
  onProgress?: (progress: BlobProgress) => void,
): Promise<void> {
  const scope = pushScope(repository);
  const what = `uploading blob ${blob.digest} (${blob.size} bytes) to ${repository}`;
  const policy = client.retryPolicy;
  const report = (state: BlobProgress['state'], sentBytes: number) =>
    onProgress?.({ digest: blob.digest, size: blob.size, sentBytes, state });
  let session = firstSession;
  let offset = 0;
  let faults = 0;

  /** After a fault: wait, then learn where the registry stands (or open a new session). */
  const recover = async (fault: string): Promise<void> => {
    faults++;
    if (faults >= policy.attempts) {
      throw new RegistryError(client.baseUrl, what, `${fault} (${faults} attempts)`);
    }
    await waitBeforeRetry(policy, faults);
    try {
      const status = await client
        .request(`${what}: asking where the upload stands`, { method: 'GET', url: session }, { scope })
        .catch(() => undefined);
      const known = status?.statusCode === 204 ? nextOffsetFromRange(status.headers.range) : undefined;
      status?.resume();
      if (status && known !== undefined && known <= blob.size) {
        session = locationOf(status, session);
        offset = known;
      } else {
        const started = await client.startUpload(repository);
        if (started.mounted) throw new Error('unreachable: an upload without mount was mounted');
        session = started.location;
        offset = 0;
      }
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      // Say what broke first; the failed attempt to go on is the reason the push stops.
      const then = error.message.slice(error.message.indexOf(' failed: ') + ' failed: '.length);
      throw new RegistryError(
        client.baseUrl,
        what,
        `${fault}; then resuming failed: ${then}`,
        error.status,
        error.code,
      );
    }
    report('resuming', offset);
  };

  while (offset < blob.size) {
    const end = Math.min(offset + client.chunkBytes, blob.size);
    const start = offset;
    try {
      const res = await client.request(
        what,
        {
          method: 'PATCH',
          url: session,
          headers: {
            'Content-Type': 'application/octet-stream',
            'Content-Length': end - start,
            'Content-Range': `${start}-${end - 1}`,
          },
          body:
            'path' in blob
              ? () => createReadStream(blob.path, { start, end: end - 1 })
              : blob.bytes.subarray(start, end),
        },
        { scope, retry: false },
      );
      const status = res.statusCode ?? 0;
      if (isTransientStatus(status) || status === 416) {
        res.resume();
        throw new TransientUploadFault(`HTTP ${status} for bytes ${start}-${end - 1}`);
      }
      await client.expectStatus(res, [202], what);
      res.resume();
      session = locationOf(res, session);
      offset = nextOffsetFromRange(res.headers.range) ?? end;
      if (offset !== end)
        throw new TransientUploadFault(`the registry has ${offset} bytes after bytes ${start}-${end - 1}`);
      faults = 0;
      report('uploading', offset);
    } catch (error) {
      // request() turns a dropped connection into a RegistryError carrying the errno as its code.
      if (error instanceof TransientUploadFault) await recover(error.message);
      else if (isTransientNetworkError(error)) {
        await recover(`the connection dropped (${(error as RegistryError).code}) during bytes ${start}-${end - 1}`);
      } else throw error;
    }
  }

  const done = await client.request(
    `${what}: committing it`,
    { method: 'PUT', url: commitUrl(session, blob.digest), headers: { 'Content-Length': 0 } },
    { scope },
  );
  if (done.statusCode !== 201 && (await client.blobExists(repository, blob.digest, scope).catch(() => false))) {
    done.resume(); // an earlier try of this PUT went through and only its answer was lost
  } else {
    await client.expectStatus(done, [201], `${what}: committing it`);
    done.resume();
  }
  report('pushed', blob.size);
}
