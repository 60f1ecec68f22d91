"""Accounting and billing (TF-EVC 2.1, 2.2): tariffs, charge detail records, energy-source shares."""
