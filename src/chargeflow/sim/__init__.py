"""Simulated sites: stations, EVs, meters, PV, building and ESS; the scenario runner; benchmarks."""
