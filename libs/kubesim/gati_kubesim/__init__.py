"""kubesim: a Kubernetes API server for development and tests, spoken to over HTTP only."""
