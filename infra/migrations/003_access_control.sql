-- Access control: projects (tenants), API keys with scopes, and an audit log of every change.
-- A key is shown once when it is made; only its sha256 is stored (keys are 256 random bits, so a fast hash is
-- as safe as a slow one and lets the gateway verify a key per request in microseconds).
-- Model names stay unique across the install (like bucket names); each model belongs to one project, and its
-- versions, deployments, approvals and metrics with it.

CREATE TABLE projects (
  name       text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projects (name) VALUES ('default');

CREATE TABLE api_keys (
  id           bigserial PRIMARY KEY,
  project      text NOT NULL REFERENCES projects,
  name         text NOT NULL,
  key_prefix   text NOT NULL,          -- the first characters of the key, to tell keys apart in listings
  key_sha256   text NOT NULL UNIQUE,
  scopes       text[] NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text,
  revoked_at   timestamptz,
  last_used_at timestamptz,
  UNIQUE (project, name)
);

ALTER TABLE models ADD COLUMN project text NOT NULL DEFAULT 'default' REFERENCES projects;
ALTER TABLE deployments ADD COLUMN project text NOT NULL DEFAULT 'default' REFERENCES projects;
ALTER TABLE deployments ADD COLUMN public boolean NOT NULL DEFAULT false;

CREATE TABLE audit_log (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  project       text NOT NULL,
  key_id        bigint,
  key_name      text NOT NULL,
  action        text NOT NULL,
  deployment_id text,
  detail        jsonb NOT NULL DEFAULT '{}',
  source        text                    -- the client's address, as the server saw it
);
CREATE INDEX audit_log_project_at_idx ON audit_log (project, at);
CREATE INDEX audit_log_deployment_at_idx ON audit_log (deployment_id, at);
