"""
The peer in bench/serving-peer.ts: one ONNX model served the way a Python user would, a BentoML
service around onnxruntime's InferenceSession, with the same session options Ferry's server gets.

    FERRY_PEER_MODEL=/path/model.onnx FERRY_PEER_BATCHABLE=0 \
      bentoml serve service:OnnxModel --host 127.0.0.1 --port 3000

POST /predict {"input": [[...], ...]} -> [[...], ...]  (float32 in, first output out, as JSON)
FERRY_PEER_BATCHABLE=1 turns on BentoML's adaptive batching for the endpoint (batch dimension 0).
FERRY_PEER_WORKERS (default 1) and FERRY_PEER_INTRA_OP_THREADS (default 1) match Ferry's one process
with one intra-op thread.
"""
import os

import bentoml
import numpy as np
import onnxruntime as ort

MODEL = os.environ["FERRY_PEER_MODEL"]
BATCHABLE = os.environ.get("FERRY_PEER_BATCHABLE", "0") == "1"
WORKERS = int(os.environ.get("FERRY_PEER_WORKERS", "1"))
INTRA_OP_THREADS = int(os.environ.get("FERRY_PEER_INTRA_OP_THREADS", "1"))


@bentoml.service(workers=WORKERS, traffic={"timeout": 60})
class OnnxModel:
    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = INTRA_OP_THREADS
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @bentoml.api(batchable=BATCHABLE, batch_dim=0, max_batch_size=32, max_latency_ms=1000)
    def predict(self, input: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: input.astype(np.float32, copy=False)})[0]
