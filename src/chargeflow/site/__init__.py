"""The site model: the circuit tree with its fuses, charging points, building load, PV and the ESS."""
