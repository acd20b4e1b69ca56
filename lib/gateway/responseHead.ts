/**
 * A replica's response head (status line and header lines), parsed for forwarding: only what node's
 * http server sends needs to be understood. Also the hop-by-hop headers, which the gateway forwards in
 * neither direction.
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** A response head larger than this is refused (node's own limit is 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;

export interface ResponseHead {
  status: number;
  /** 1xx other than 101 (100 Continue, 103 Early Hints): the final response follows; nothing else is parsed. */
  interim: boolean;
  /** [name, value, ...] to forward: without hop-by-hop headers, those named in Connection and the replaced ones, with `extra` appended. */
  headers: string[];
  /** -1 when there is none. */
  contentLength: number;
  chunked: boolean;
  /** False when the connection cannot carry another response after this one. */
  keepAlive: boolean;
}

/**
 * Parses `text`, the head without its final CRLF CRLF. `extra` ([name, value, ...], names in lower
 * case) replaces the replica's headers of those names. Throws for a malformed head.
 */
export function parseResponseHead(text: string, extra: readonly string[]): ResponseHead {
  // Status line: HTTP/1.x NNN[ reason]
  const d0 = text.charCodeAt(9) - 48;
  const d1 = text.charCodeAt(10) - 48;
  const d2 = text.charCodeAt(11) - 48;
  const after = text.length > 12 ? text.charCodeAt(12) : 13;
  if (
    !text.startsWith('HTTP/1.') ||
    text.charCodeAt(8) !== 32 ||
    !(d0 >= 1 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9) ||
    (after !== 32 && after !== 13)
  ) {
    throw new Error(`malformed response from the replica: ${JSON.stringify(text.slice(0, 100))}`);
  }
  const status = d0 * 100 + d1 * 10 + d2;
  if (status < 200 && status !== 101) {
    return { status, interim: true, headers: [], contentLength: -1, chunked: false, keepAlive: true };
  }
  const http10 = text.charCodeAt(7) === 48;
  const headers: string[] = [];
  let contentLength = -1;
  let chunked = false;
  let keepAlive = true;
  let connection: string | undefined;
  let eol = text.indexOf('\r\n');
  while (eol !== -1) {
    const start = eol + 2;
    eol = text.indexOf('\r\n', start);
    const lineEnd = eol === -1 ? text.length : eol;
    const colon = text.indexOf(':', start);
    if (colon <= start || colon >= lineEnd) throw new Error("malformed header line in the replica's response");
    const name = text.slice(start, colon);
    const value = text.slice(colon + 1, lineEnd).trim();
    const lower = name.toLowerCase();
    if (lower === 'content-length') {
      const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
      if (Number.isNaN(n) || (contentLength !== -1 && contentLength !== n))
        throw new Error("invalid content-length in the replica's response");
      contentLength = n;
    } else if (lower === 'transfer-encoding') {
      chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
      if (!chunked) keepAlive = false; // some other coding: delimited by close
      continue;
    } else if (lower === 'connection') {
      connection = connection === undefined ? value.toLowerCase() : `${connection},${value.toLowerCase()}`;
      continue;
    } else if (HOP_BY_HOP.has(lower) || isReplaced(lower, extra)) {
      continue;
    }
    headers.push(name, value);
  }
  if (connection !== undefined) {
    const tokens = connection.split(',').map((t) => t.trim());
    if (tokens.includes('close')) keepAlive = false;
    if (tokens.some((t) => t !== 'close' && t !== 'keep-alive')) {
      for (let i = headers.length - 2; i >= 0; i -= 2)
        if (tokens.includes(headers[i].toLowerCase())) headers.splice(i, 2);
    }
  }
  if (http10 && !(connection ?? '').includes('keep-alive')) keepAlive = false;
  for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
  return { status, interim: false, headers, contentLength, chunked, keepAlive };
}

function isReplaced(lower: string, extra: readonly string[]): boolean {
  for (let i = 0; i < extra.length; i += 2) if (extra[i] === lower) return true;
  return false;
}
