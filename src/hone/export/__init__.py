"""Exporting registered versions (ONNX with preprocessing inside, safetensors, pt2), each
verified against the eager model; and the predictor that runs an exported graph.
Submodules import PyTorch; ``predictor`` does not."""
