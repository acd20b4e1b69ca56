-- The deploy stage's plans (lib/cost/deployStage.ts): for each optimization plan a run could take, the cost
-- engine's whole plan (profile, constraints, catalog date and hash, the ranked options and why), and on the
-- plan the run took, the option it deployed, how it was chosen (one-click, approved, default after the
-- timeout) and by whom. One run per model version: the deployment id names the run.

CREATE TABLE deployment_plans (
  deployment_id     text NOT NULL,
  optimization_plan text NOT NULL,
  model_version_id  bigint NOT NULL REFERENCES model_versions ON DELETE CASCADE,
  plan              jsonb NOT NULL,
  -- The engine's choice: the cheapest deployable option meeting the SLO and budget (null: none does).
  engine_choice     text,
  catalog_hash      text NOT NULL,
  planned_at        timestamptz NOT NULL DEFAULT now(),
  -- Set on the row of the plan the run took.
  chosen_option     text,
  target            text,
  source            text,
  approved_by       text,
  decided_at        timestamptz,
  PRIMARY KEY (deployment_id, optimization_plan)
);
CREATE INDEX deployment_plans_decided_idx ON deployment_plans (deployment_id) WHERE chosen_option IS NOT NULL;
