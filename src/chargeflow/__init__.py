"""Chargeflow: smart EV charging after the Technical Framework on EV Charging (TF-EVC), Vol. 1."""

__version__ = "0.1.0"
