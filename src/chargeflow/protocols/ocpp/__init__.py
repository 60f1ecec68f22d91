"""OCPP 1.6J, 2.0.1 and 2.1 over websockets: framing, schema validation, connections and the server.

The modules here translate between wire frames and calls on the CSM service; they never decide.
"""
