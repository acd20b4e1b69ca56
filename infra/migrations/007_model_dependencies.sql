-- What each model version needs from a runtime, found by the upload stage's validation: operator sets and
-- operators by domain, domains beyond the ONNX standard, the oldest onnxruntime release that implements
-- its opsets and IR version, dynamic dimensions and external files (lib/onnx/validate/dependencies.ts).
-- Versions uploaded before this have none.

ALTER TABLE model_versions ADD COLUMN dependencies jsonb;
