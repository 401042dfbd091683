"""timescape: versions side by side, progressive rollout, rollback, routing, decommission."""
