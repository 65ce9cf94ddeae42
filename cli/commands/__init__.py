"""The `nimbus` subcommands, one module per area (imported lazily by `cli.main`)."""
