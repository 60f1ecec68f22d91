"""The subcommands of ``chargeflow``: each module parses its input, calls the core and prints the result."""
