"""Subcommands of the ``chargeflow`` command, each registered in ``chargeflow.cli``."""
