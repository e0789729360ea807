"""After training: `eval`, `compare`, `report`, `track` (MLflow runs) and `register` (the MLflow registry)."""
