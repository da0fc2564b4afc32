"""What a person reads: the report files and the MLflow descriptions."""
