"""watcher: publishes every change of the watched Kubernetes objects to JetStream."""
