"""Talking to the device under test: its console (console.py), provisioning MQTT settings
(provision.py) and its HTTPS server (https_server.py)."""
