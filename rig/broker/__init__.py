"""The broker side: a real Mosquitto per mode (mosquitto.py), and the control of the processes
the rig starts (process.py)."""
