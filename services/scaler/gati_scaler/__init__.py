"""scaler: decides replicas for handlers and modules from real signals."""
