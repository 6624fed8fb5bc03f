"""Send-time model: features, shopper simulator, offline training and onnxruntime serving.

Import the submodules you need. Serving code imports `ml.inference` (numpy + onnxruntime only);
`ml.train` and `ml.bench` pull in scikit-learn and skl2onnx and are offline tooling.
Nothing here imports `app`, `connectors` or `recovery`, and nothing loads a model at import time.
"""
