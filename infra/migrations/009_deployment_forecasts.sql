-- The monitor's predictive decisions (activities/monitor/predictive.ts), one per collection with
-- `--predictive on|forecast-only`: the forecast peak per minute over the lead window, the floor it called
-- for and whether it was set. The dashboard charts them against the actual rate.

CREATE TABLE deployment_forecasts (
  id                  bigserial PRIMARY KEY,
  deployment_id       text NOT NULL REFERENCES deployments ON DELETE CASCADE,
  at                  timestamptz NOT NULL DEFAULT now(),
  mode                text NOT NULL,
  forecast_per_minute double precision NOT NULL,
  lead_minutes        integer NOT NULL,
  floor               integer NOT NULL,
  applied             boolean NOT NULL,
  reason              text NOT NULL
);
CREATE INDEX deployment_forecasts_deployment_at_idx ON deployment_forecasts (deployment_id, at);
