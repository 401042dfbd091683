"""The `gati-operator` command line."""
