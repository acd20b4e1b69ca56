"""The peer for bench/quantize-static.ts: onnxruntime's own Python static quantizer on the same model and the
same calibration data Ferry used.

    python quantize_static_peer.py MODEL.onnx OUT.onnx MANIFEST.json METHOD [PERCENTILE]

MANIFEST.json: {"samples": [{"<input name>": "<file>.npy", ...}, ...]}, one entry per calibration batch, read
in order by a CalibrationDataReader. METHOD: minmax | percentile | entropy. QDQ format, per-channel int8 weights,
uint8 activations (the settings Ferry's int8-static uses by default). Prints one JSON line: the onnxruntime version
and the seconds quantize_static took.
"""
import json
import sys
import time

import numpy as np
import onnxruntime
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static


class ManifestReader(CalibrationDataReader):
    def __init__(self, manifest):
        self._samples = iter(manifest["samples"])

    def get_next(self):
        sample = next(self._samples, None)
        if sample is None:
            return None
        return {name: np.load(path) for name, path in sample.items()}


def main():
    src, dst, manifest_path, method = sys.argv[1:5]
    percentile = float(sys.argv[5]) if len(sys.argv) > 5 else 99.99
    with open(manifest_path) as f:
        manifest = json.load(f)
    calibrate_method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[method]
    extra = {"CalibPercentile": percentile} if method == "percentile" else {}
    start = time.perf_counter()
    quantize_static(
        src,
        dst,
        ManifestReader(manifest),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=calibrate_method,
        extra_options=extra,
    )
    seconds = time.perf_counter() - start
    print(json.dumps({"onnxruntime": onnxruntime.__version__, "seconds": seconds}))


if __name__ == "__main__":
    main()
