-- The container stage records an image only after its smoke test passed (the built image run under the
-- container runtime, one real inference compared with onnxruntime's own output), and keeps what the test
-- found: the runtime that ran it (youki, runc, or process), the platform, the agreement figures and timings.
-- Rows from before the smoke test have none.

ALTER TABLE images ADD COLUMN smoke_test jsonb;
