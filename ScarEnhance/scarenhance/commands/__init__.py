"""One module per `scarenhance` subcommand: add_arguments(parser) and run(args)."""
