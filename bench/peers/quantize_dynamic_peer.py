"""The peer Ferry's int8-dynamic technique is measured against: onnxruntime's own Python quantizer.

Usage: python quantize_dynamic_peer.py IN.onnx OUT.onnx
Runs quantize_dynamic with per-channel int8 weights (the settings Ferry uses) and prints one JSON line
with the onnxruntime version and how long quantization took.
"""
import json
import sys
import time

import onnxruntime
from onnxruntime.quantization import QuantType, quantize_dynamic


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: quantize_dynamic_peer.py IN.onnx OUT.onnx")
    source, target = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8)
    print(json.dumps({"onnxruntime": onnxruntime.__version__, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
