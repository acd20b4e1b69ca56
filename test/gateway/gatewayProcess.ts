/** A gateway in its own process, so tests can crash it (SIGKILL) and start another on the same state. */
import { startGateway } from '../../lib/gateway';

async function main(): Promise<void> {
  const gateway = await startGateway({
    port: Number(process.env.GATEWAY_PORT),
    stateDir: process.env.GATEWAY_STATE_DIR!,
    stopGraceMs: 5000,
    readyTimeoutMs: 30_000,
  });
  process.stdout.write(`gateway ready at ${gateway.url}\n`);
  process.once('SIGTERM', () => void gateway.close().then(() => process.exit(0)));
}

main().catch((err: Error) => {
  process.stderr.write(`gateway failed: ${err.stack}\n`);
  process.exit(1);
});
