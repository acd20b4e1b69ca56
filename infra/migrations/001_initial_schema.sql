-- Ferry's data model: models and their versions, optimization results, built images, deployments and
-- what the monitor records about them. Large things (model bytes, images) live in the object store or
-- the registry; rows hold their keys and digests.

CREATE TABLE models (
  id         bigserial PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  created_at timestamptz DEFAULT now()
);

CREATE TABLE model_versions (
  id         bigserial PRIMARY KEY,
  model_id   bigint REFERENCES models,
  version    text NOT NULL,
  sha256     text NOT NULL,
  size_bytes bigint NOT NULL,
  object_key text NOT NULL,
  analysis   jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz DEFAULT now(),
  UNIQUE (model_id, version)
);

CREATE TABLE optimization_results (
  id               bigserial PRIMARY KEY,
  model_version_id bigint REFERENCES model_versions ON DELETE CASCADE,
  plan             text NOT NULL,
  object_key       text NOT NULL,
  sha256           text NOT NULL,
  benchmark        jsonb NOT NULL,
  created_at       timestamptz DEFAULT now(),
  UNIQUE (model_version_id, plan)
);

CREATE TABLE images (
  id               bigserial PRIMARY KEY,
  model_version_id bigint REFERENCES model_versions ON DELETE CASCADE,
  plan             text NOT NULL,
  repository       text NOT NULL,
  tag              text NOT NULL,
  digest           text NOT NULL,
  size_bytes       bigint NOT NULL,
  created_at       timestamptz DEFAULT now(),
  UNIQUE (repository, digest)
);

CREATE TABLE deployments (
  id               text PRIMARY KEY,
  model_version_id bigint REFERENCES model_versions ON DELETE CASCADE,
  image_id         bigint REFERENCES images,
  target           text NOT NULL,
  endpoint         text,
  state            text NOT NULL,
  replicas         int NOT NULL DEFAULT 0,
  config           jsonb NOT NULL DEFAULT '{}',
  created_at       timestamptz DEFAULT now(),
  updated_at       timestamptz DEFAULT now()
);

CREATE TABLE deployment_metrics (
  id             bigserial PRIMARY KEY,
  deployment_id  text REFERENCES deployments ON DELETE CASCADE,
  collected_at   timestamptz NOT NULL DEFAULT now(),
  request_count  bigint NOT NULL,
  error_count    bigint NOT NULL,
  latency_p50_ms double precision,
  latency_p95_ms double precision,
  requests_delta bigint NOT NULL DEFAULT 0,
  replicas       int NOT NULL DEFAULT 0
);
CREATE INDEX deployment_metrics_deployment_collected_idx ON deployment_metrics (deployment_id, collected_at);

CREATE TABLE deployment_events (
  id            bigserial PRIMARY KEY,
  deployment_id text REFERENCES deployments ON DELETE CASCADE,
  at            timestamptz DEFAULT now(),
  kind          text NOT NULL,
  detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX deployment_events_deployment_at_idx ON deployment_events (deployment_id, at);
