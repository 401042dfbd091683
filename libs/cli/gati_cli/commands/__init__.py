"""One module per `gati-operator` subcommand, each exposing `register(subparsers)`."""
