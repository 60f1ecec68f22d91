"""The Charging Station Manager (TF-EVC CSM): sessions, demand, and the split of P_granted."""
