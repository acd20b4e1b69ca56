/**
 * The object store tells "not reachable" apart from other failures by the error's type and code, not its
 * message. Needs no service: it talks to a port nothing listens on.
 *
 *   node --import tsx --test test/store/objectStore.test.ts
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { loadConfig } from '../../lib/config';
import { ObjectStore, ObjectStoreUnavailableError } from '../../lib/store/objectStore';

/** A port that was free a moment ago: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('a refused connection is an ObjectStoreUnavailableError that says how to start the stack', async () => {
  const endpoint = `http://127.0.0.1:${await closedPort()}`;
  const store = new ObjectStore({ ...loadConfig().s3, endpoint });
  try {
    for (const attempt of [() => store.exists('models/x'), () => store.putBytes('models/x', Buffer.from('x'))]) {
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(err instanceof ObjectStoreUnavailableError, `got ${String(err)}`);
        assert.match(
          err.message,
          new RegExp(`object store at ${endpoint} is not reachable .*bash infra/stack\\.sh start`),
        );
        return true;
      });
    }
  } finally {
    store.client.destroy();
  }
});

test('another failure keeps its own type, with the operation and bucket added to its message', async () => {
  // A server that answers every request with a 403 the SDK understands: not an availability problem.
  const body = '<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>denied</Message></Error>';
  const server = net.createServer((socket) => {
    socket.once('data', () =>
      socket.end(
        `HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const store = new ObjectStore({ ...loadConfig().s3, endpoint });
  try {
    await assert.rejects(store.putBytes('models/x', Buffer.from('x')), (err: unknown) => {
      assert.ok(err instanceof Error && !(err instanceof ObjectStoreUnavailableError), `got ${String(err)}`);
      assert.match(err.message, new RegExp(`in bucket ${store.bucket} failed`));
      return true;
    });
  } finally {
    store.client.destroy();
    server.close();
  }
});
