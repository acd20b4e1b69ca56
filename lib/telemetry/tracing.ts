/**
 * OpenTelemetry for Ferry's processes. Spans go to an OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT
 * is set; otherwise to a JSON-lines file under the state dir, so traces exist from day one without
 * running a collector.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { ExportResult } from '@opentelemetry/core';
import { Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { FerryConfig } from '../config';

/** Writes finished spans as one JSON object per line. */
export class JsonLinesSpanExporter implements SpanExporter {
  constructor(private readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
  }
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      const lines = spans.map((s) =>
        JSON.stringify({
          traceId: s.spanContext().traceId,
          spanId: s.spanContext().spanId,
          parentSpanId: s.parentSpanId,
          name: s.name,
          kind: s.kind,
          start: hrToIso(s.startTime),
          durationMs: s.duration[0] * 1e3 + s.duration[1] / 1e6,
          status: s.status,
          attributes: s.attributes,
          service: s.resource.attributes['service.name'],
        }),
      );
      if (lines.length) appendFileSync(this.file, `${lines.join('\n')}\n`);
      done({ code: 0 });
    } catch (error) {
      done({ code: 1, error: error as Error });
    }
  }
  async shutdown(): Promise<void> {}
}

function hrToIso([s, ns]: [number, number]): string {
  return new Date(s * 1000 + ns / 1e6).toISOString();
}

export interface Telemetry {
  resource: Resource;
  spanProcessor: SpanProcessor;
  shutdown(): Promise<void>;
}

export async function startTelemetry(
  serviceName: string,
  config: Pick<FerryConfig, 'stateDir' | 'telemetry'>,
): Promise<Telemetry> {
  const resource = new Resource({ 'service.name': serviceName });
  let exporter: SpanExporter;
  if (config.telemetry.otlpEndpoint) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    // It reads the standard OTEL_EXPORTER_OTLP_* variables itself (endpoint, headers, per-signal overrides).
    exporter = new OTLPTraceExporter();
  } else {
    exporter = new JsonLinesSpanExporter(path.join(config.stateDir, 'traces', `${serviceName}.jsonl`));
  }
  const spanProcessor = new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 });
  const sdk = new NodeSDK({ resource, spanProcessors: [spanProcessor] });
  sdk.start();
  return { resource, spanProcessor, shutdown: () => sdk.shutdown() };
}
