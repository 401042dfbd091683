"""The peer a user would pick instead of gati-operator: a plain kopf operator for GatiHandler."""
