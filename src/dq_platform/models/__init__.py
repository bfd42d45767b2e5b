"""Model training, ONNX serving artifacts and explanations (baseline TF-IDF+LR, MiniLM)."""
