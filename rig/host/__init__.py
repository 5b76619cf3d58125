"""The host's side of every connection: TLS contexts and credentials (tls.py), the MQTT observer
(observer.py), mosquitto_pub as a reference peer (peers.py), the HTTPS clients
(https_clients.py), and cipher-suite names across OpenSSL and mbedTLS (cipher_suites.py)."""
