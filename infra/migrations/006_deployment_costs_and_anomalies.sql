-- Live cost of each deployment, one row per monitor collection interval (lib/analytics/costAccounting.ts):
-- replica-seconds held, the OpenCost-style allocation (max(request, usage)) with its idle part, the traffic
-- it served, cold starts, and the signals the anomaly detector scores (so their history is one table).
-- Anomalies the detector opened, with when they cleared; their openings and clearings are also events.

CREATE TABLE deployment_costs (
  id              bigserial PRIMARY KEY,
  deployment_id   text NOT NULL REFERENCES deployments ON DELETE CASCADE,
  interval_start  timestamptz NOT NULL,
  interval_end    timestamptz NOT NULL,
  replica_seconds double precision NOT NULL,
  allocated_usd   double precision NOT NULL,
  idle_usd        double precision NOT NULL,
  requests        bigint NOT NULL,
  errors          bigint NOT NULL,
  busy_seconds    double precision NOT NULL,
  cold_starts     int NOT NULL,
  cold_start_ms   double precision,
  per_1k_usd      double precision,
  latency_p95_ms  double precision,
  by_revision     jsonb NOT NULL DEFAULT '{}',
  -- The resource price used: { usdPerHour, vcpus, memoryGiB, source } and the replica's request.
  pricing         jsonb NOT NULL DEFAULT '{}',
  UNIQUE (deployment_id, interval_end)
);
CREATE INDEX deployment_costs_deployment_end_idx ON deployment_costs (deployment_id, interval_end);

CREATE TABLE deployment_anomalies (
  id            bigserial PRIMARY KEY,
  deployment_id text NOT NULL REFERENCES deployments ON DELETE CASCADE,
  signal        text NOT NULL,
  since         timestamptz NOT NULL,
  opened_at     timestamptz NOT NULL,
  cleared_at    timestamptz,
  peak_score    double precision NOT NULL,
  detail        jsonb NOT NULL DEFAULT '{}',
  UNIQUE (deployment_id, signal, since)
);
CREATE INDEX deployment_anomalies_open_idx ON deployment_anomalies (deployment_id) WHERE cleared_at IS NULL;
