"""The product's tests, shipped with the rig so that `hil run` (pytest --pyargs rig.cases...)
runs them from any directory that holds a hil.toml:

    test_mqtt_modes.py  the board connects and publishes in each broker mode (ca, mutual, psk)
    test_https.py       the device's HTTPS server in modes https and https-mutual
    test_negative.py    the negative matrix: each broken configuration refused for the right
                        reason on both sides (the table: rig/cases/negative.py)
"""
