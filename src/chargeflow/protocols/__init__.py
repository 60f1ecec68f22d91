"""One sub-package per standard; adapters translate between wire messages and Chargeflow's types."""
