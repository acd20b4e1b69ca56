/**
 * Serverless / scale to zero: an instance per concurrent request slot, started on demand, billed per
 * request and per second of memory and vCPU while it serves. No queueing (the platform scales out); the cost
 * of scaling out is cold starts, from the measured cold start plus the platform's own.
 *
 * A request meets a cold start when every instance has been reclaimed since the previous request (Poisson
 * arrivals at λ: a gap longer than the keep-warm time K, probability e^{-λK}) or when the minute needs more
 * instances than ran in the last K (each new one starts cold).
 *
 * Per-service behaviour that the price lists do not carry (estimates unless said otherwise):
 */
import type { ServerlessPrice } from '../../catalog/types';
import { expectedLatency, scheduleComponents, serversPerMinute } from '../capacity';
import { cpuSpeed, measuringMachineFactor } from '../cpuSpeed';
import { REPLICA_BOOT_MS } from '../measurements';
import type { ServiceTime } from '../queueing';
import type { PlanOption } from '../types';
import { fmtMs, infeasibleOption, optionId, rttTo, type StrategyContext } from './context';

interface Behaviour {
  /** The platform's own start (sandbox, image), on top of the server's start and model load. */
  platformColdStartMs: number;
  /** How long an idle instance is kept before it is reclaimed. */
  keepWarmMs: number;
  /** Billed duration is rounded up to this. */
  billingGranularityMs: number;
  /** Sizes offered: vCPUs for a memory size (Lambda) or fixed vCPU/memory pairs. */
  sizes: (needGiB: number, threads: number) => Array<{ memoryGiB: number; vcpus: number }>;
  basis: string;
}

const LAMBDA_GIB_PER_VCPU = 1769 / 1024; // published: 1,769 MB of memory = one vCPU

export const SERVERLESS_BEHAVIOUR: Record<string, Behaviour> = {
  'aws-lambda': {
    platformColdStartMs: 600,
    keepWarmMs: 10 * 60_000,
    billingGranularityMs: 1,
    sizes: (need, threads) =>
      [need, LAMBDA_GIB_PER_VCPU, threads * LAMBDA_GIB_PER_VCPU]
        .filter((m, i, a) => m >= need && a.indexOf(m) === i)
        .map((m) => ({ memoryGiB: Math.ceil(m * 1024) / 1024, vcpus: Math.min(6, m / LAMBDA_GIB_PER_VCPU) })),
    basis: 'cold start and keep-warm estimated; 1 ms billing and 1,769 MB per vCPU as published',
  },
  'gcp-cloud-run': {
    platformColdStartMs: 1000,
    keepWarmMs: 15 * 60_000,
    billingGranularityMs: 100,
    sizes: (need) => [1, 2, 4].map((v) => ({ vcpus: v, memoryGiB: Math.max(need, v * 0.5) })),
    basis: 'cold start estimated; idle instances kept up to 15 min and 100 ms billing as documented',
  },
  'azure-container-apps': {
    platformColdStartMs: 2000,
    keepWarmMs: 300_000,
    billingGranularityMs: 1000,
    sizes: (need) =>
      [
        { vcpus: 0.5, memoryGiB: 1 },
        { vcpus: 1, memoryGiB: 2 },
        { vcpus: 2, memoryGiB: 4 },
      ].filter((s) => s.memoryGiB >= need),
    basis: 'cold start estimated; 300 s scale-to-zero cooldown (the default) and per-second billing as documented',
  },
};

const GENERIC: Behaviour = {
  platformColdStartMs: 1500,
  keepWarmMs: 300_000,
  billingGranularityMs: 100,
  sizes: (need) => [{ vcpus: 1, memoryGiB: Math.max(need, 1) }],
  basis: 'an unknown service: every figure estimated',
};

/** The runtime image without the model (Node, onnxruntime, the server), for image size limits. */
export const RUNTIME_IMAGE_BYTES = 150 * 2 ** 20;
/** A serverless instance's memory must hold the replica's peak RSS with this headroom. */
const MEMORY_HEADROOM = 1.2;

export function serverlessOption(ctx: StrategyContext, price: ServerlessPrice): PlanOption {
  const base = {
    id: optionId('serverless', price.provider, price.region, `${price.service}-${price.arch}`),
    strategy: 'serverless' as const,
    provider: price.provider,
    region: price.region,
    instanceType: `${price.service}-${price.arch}`,
  };
  const b = SERVERLESS_BEHAVIOUR[price.service] ?? GENERIC;
  const m = ctx.model;
  const needGiB = (m.peakRssBytes * MEMORY_HEADROOM) / 2 ** 30;
  const L = price.limits;
  if (needGiB > L.maxMemoryGiB)
    return infeasibleOption(
      base,
      'serverless-limit',
      `over a serverless limit: needs ${needGiB.toFixed(2)} GiB, ${price.service} allows ${L.maxMemoryGiB} GiB`,
    );
  if (m.requestBytes > L.maxRequestBytes)
    return infeasibleOption(
      base,
      'serverless-limit',
      `over a serverless limit: a request is ${m.requestBytes} bytes, ${price.service} accepts ${L.maxRequestBytes}`,
    );
  const imageBytes = m.modelSizeBytes + RUNTIME_IMAGE_BYTES;
  if (L.maxImageBytes !== undefined && imageBytes > L.maxImageBytes)
    return infeasibleOption(
      base,
      'serverless-limit',
      `over a serverless limit: the image is ~${Math.round(imageBytes / 2 ** 20)} MiB, ${price.service} allows ${Math.round(L.maxImageBytes / 2 ** 20)} MiB`,
    );

  const speed = cpuSpeed({ provider: price.provider, instanceType: price.service, arch: price.arch }, ctx.calibration);
  const sizes = b.sizes(needGiB, m.threads).filter((s) => s.memoryGiB <= L.maxMemoryGiB && s.vcpus <= L.maxVcpus);
  if (sizes.length === 0)
    return infeasibleOption(
      base,
      'serverless-limit',
      `over a serverless limit: no ${price.service} size has ${needGiB.toFixed(2)} GiB`,
    );
  const rtt = rttTo(ctx, price.region);
  const estimates = [`${price.service} behaviour (${b.basis})`];
  if (speed.basis !== 'calibrated') estimates.push(`CPU speed of ${price.service} (${speed.basis})`);
  if (price.source.estimate) estimates.push(`price of ${price.service} (${price.source.note ?? 'estimate'})`);

  let best: PlanOption | undefined;
  for (const size of sizes) {
    const option = sized(ctx, price, b, size, speed.factor, rtt, base);
    if (option.reasonKind === 'serverless-limit') {
      best ??= option;
      continue;
    }
    const better =
      !best ||
      (option.feasible && !best.feasible) ||
      (option.feasible === best.feasible && option.monthlyCostUsd < best.monthlyCostUsd);
    if (better) best = option;
  }
  return { ...best!, estimates };
}

function sized(
  ctx: StrategyContext,
  price: ServerlessPrice,
  b: Behaviour,
  size: { memoryGiB: number; vcpus: number },
  speedFactor: number,
  rtt: number,
  base: Pick<PlanOption, 'id' | 'strategy' | 'provider' | 'region' | 'instanceType'>,
): PlanOption {
  const m = ctx.model;
  const threads = Math.min(m.threads, Math.max(1, Math.floor(size.vcpus)));
  // Fewer vCPUs than the measurement's threads slow it down in proportion (a half vCPU: twice as slow).
  const scale = (m.threads / Math.min(m.threads, size.vcpus)) * (measuringMachineFactor(ctx.calibration) / speedFactor);
  const service: ServiceTime = {
    meanMs: m.batch1.meanMs * scale,
    p50Ms: m.batch1.p50Ms * scale,
    p95Ms: m.batch1.p95Ms * scale,
  };
  const coldStartMs = Math.round(b.platformColdStartMs + REPLICA_BOOT_MS + m.loadMs * scale);
  const L = price.limits;
  if (coldStartMs + service.p95Ms > L.maxTimeoutSeconds * 1000)
    return infeasibleOption(
      base,
      'serverless-limit',
      `over a serverless limit: a cold request takes ${coldStartMs} ms, the timeout is ${L.maxTimeoutSeconds} s`,
    );
  const concurrency = Math.max(1, Math.min(L.maxConcurrencyPerInstance, Math.floor(size.vcpus / threads)));
  const rates = ctx.profile.perMinuteRps;
  // Instances needed per minute: Erlang-sized at the SLO, as an autoscaler keeps them, in instance units.
  const servers = serversPerMinute(service, rates, ctx.constraints.sloP95Ms - rtt);
  const instances = (servers ?? rates.map(() => 1)).map((s) => Math.ceil(s / concurrency));
  const window = Math.max(1, Math.round(b.keepWarmMs / 60_000));
  const coldShare: number[] = rates.map((rps, i) => {
    if (rps <= 0) return 0;
    const requests = rps * 60;
    const idleCold = Math.exp((-rps * b.keepWarmMs) / 1000);
    const warmBefore = Math.max(0, ...instances.slice(Math.max(0, i - window), i));
    const scaleOut = Math.max(0, instances[i] - warmBefore);
    return Math.min(1, idleCold + scaleOut / requests);
  });
  // No queueing: each request has a server of its own (4096 stands for "as many as needed").
  const comps = scheduleComponents(service, rates, (i) => [
    { weight: 1 - coldShare[i], servers: 4096 },
    { weight: coldShare[i], servers: 4096, extraMs: coldStartMs },
  ]);
  const lat = expectedLatency(comps, ctx.constraints.sloP95Ms, rtt);
  const totalRequests = rates.reduce((a, r) => a + r * 60, 0);
  const coldRequests = rates.reduce((a, r, i) => a + r * 60 * coldShare[i], 0);
  const g = b.billingGranularityMs;
  const billedMs = g <= 1 ? service.meanMs : Math.max(g, Math.ceil(service.meanMs / g) * g);
  const billedSeconds = (totalRequests * billedMs + coldRequests * coldStartMs) / 1000 / concurrency;
  // Over the profile's span (a day, or a trace's days), then scaled to a month.
  const perSpan =
    (totalRequests / 1e6) * price.usdPerMillionRequests +
    billedSeconds * (size.memoryGiB * price.usdPerGbSecond + size.vcpus * price.usdPerVcpuSecond);
  const monthly = perSpan * ctx.monthScale;
  const share = totalRequests ? coldRequests / totalRequests : 0;
  const coldOk = ctx.constraints.maxColdStartMs === undefined || coldStartMs <= ctx.constraints.maxColdStartMs;
  const sloMet = lat.p95Ms <= ctx.constraints.sloP95Ms;
  const feasible = sloMet && coldOk && servers !== undefined;
  const reason = !coldOk
    ? {
        reasonKind: 'cold-start' as const,
        reason: `cold start ${coldStartMs} ms > --max-cold-start ${ctx.constraints.maxColdStartMs} ms`,
      }
    : !feasible
      ? {
          reasonKind: 'slo-unmet' as const,
          reason: `SLO unmet: p95 ${fmtMs(lat.p95Ms)} > ${ctx.constraints.sloP95Ms} ms (cold starts on ${(100 * share).toFixed(1)}% of requests)`,
        }
      : {};
  return {
    ...base,
    monthlyCostUsd: monthly,
    p95Ms: lat.p95Ms,
    withinSloShare: lat.withinSloShare,
    feasible,
    ...reason,
    risk: share > 0.01 ? 'medium' : 'low',
    why: `scale to zero: ${size.memoryGiB.toFixed(2)} GiB / ${+size.vcpus.toFixed(2)} vCPU per instance, ${concurrency} request(s) each; $${price.usdPerMillionRequests}/M requests + billed seconds; cold start ${coldStartMs} ms on ${(100 * share).toFixed(2)}% of requests`,
    instances: {
      min: Math.min(...instances),
      max: Math.max(...instances),
      mean: Math.round((100 * instances.reduce((a, x) => a + x, 0)) / instances.length) / 100,
    },
    coldStartMs,
    coldStartShare: share,
    deployable: false,
    estimates: [],
    ...(ctx.constraints.usersIn ? { networkRttMs: rtt } : {}),
    serverless: {
      service: price.service,
      memoryGiB: size.memoryGiB,
      vcpus: size.vcpus,
      concurrency,
      keepWarmMs: b.keepWarmMs,
    },
    service,
  };
}
