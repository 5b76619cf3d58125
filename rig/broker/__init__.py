"""The broker side: a real Mosquitto per mode (mosquitto.py). The processes it starts and its
secret files go through rig/local/."""
