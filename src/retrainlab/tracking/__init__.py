"""MLflow at the edge: the tracking store and its runs, the logged model, the team server."""
