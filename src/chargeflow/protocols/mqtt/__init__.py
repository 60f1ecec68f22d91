"""MQTT: the CSM↔EMS exchange between processes (and later Home Assistant)."""
