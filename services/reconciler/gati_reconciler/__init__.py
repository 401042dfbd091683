"""reconciler: turns handlers and modules into Deployments, Services, ConfigMaps and status."""
