"""Talking to the device under test: its console (console.py), the board's states from boot to a
cell and back, reset only when a cell needs it (strategy.py), provisioning MQTT settings
(provision.py) and its HTTPS server (https_server.py)."""
