/**
 * The options of every connection Ferry makes to Temporal, from the configuration: the address and, for a
 * real cluster, TLS or mTLS (lib/config.ts, TemporalTlsSettings). The same options serve the client's
 * Connection (the CLI, the API) and the worker's NativeConnection.
 */
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import type { FerryConfig, TemporalTlsSettings } from './config';

export interface TemporalConnectionOptions {
  address: string;
  /** Absent: plain gRPC, as the dev stack's server on 127.0.0.1 speaks. */
  tls?: TLSConfig;
}

function readPem(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

export function temporalTlsConfig(settings: TemporalTlsSettings): TLSConfig {
  const tls: TLSConfig = {};
  if (settings.serverName) tls.serverNameOverride = settings.serverName;
  if (settings.caFile) tls.serverRootCACertificate = readPem('FERRY_TEMPORAL_TLS_CA', settings.caFile);
  if (settings.clientCertFile && settings.clientKeyFile) {
    tls.clientCertPair = {
      crt: readPem('FERRY_TEMPORAL_TLS_CERT', settings.clientCertFile),
      key: readPem('FERRY_TEMPORAL_TLS_KEY', settings.clientKeyFile),
    };
  }
  return tls;
}

export function temporalConnectionOptions(temporal: FerryConfig['temporal']): TemporalConnectionOptions {
  return temporal.tls
    ? { address: temporal.address, tls: temporalTlsConfig(temporal.tls) }
    : { address: temporal.address };
}
