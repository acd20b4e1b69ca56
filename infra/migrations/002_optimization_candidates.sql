-- The optimize stage measures every candidate (the original, each technique, combinations) in one run and
-- keeps the whole trade-off table: one optimization_results row per candidate, including the ones that did
-- not apply or that onnxruntime could not load (no object then), and one optimization_runs row per model
-- version with the table as the stage produced it and the choice that was made from it.

ALTER TABLE optimization_results
  ALTER COLUMN object_key DROP NOT NULL,
  ALTER COLUMN sha256 DROP NOT NULL,
  ADD COLUMN state           text    NOT NULL DEFAULT 'measured',
  ADD COLUMN techniques      text[]  NOT NULL DEFAULT '{}',
  ADD COLUMN within_budget   boolean NOT NULL DEFAULT true,
  ADD COLUMN reason          text,
  ADD COLUMN session_options jsonb,
  ADD COLUMN chosen          boolean NOT NULL DEFAULT false;

CREATE TABLE optimization_runs (
  model_version_id bigint PRIMARY KEY REFERENCES model_versions ON DELETE CASCADE,
  best             text   NOT NULL,
  result_table     jsonb  NOT NULL,
  chosen           text,
  chosen_source    text,
  chosen_by        text,
  created_at       timestamptz DEFAULT now(),
  chosen_at        timestamptz
);
