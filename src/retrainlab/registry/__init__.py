"""The MLflow model registry: the challenger, gated promotion to champion, rollback."""
