"""The model registry: MLflow client, the embedded registry server, alias events, the follower."""
