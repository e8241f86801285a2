"""MLOps: the MLflow tracking store and model registry (`tracking`), where fine-tuned models are
logged, registered and resolved back to local directories."""
