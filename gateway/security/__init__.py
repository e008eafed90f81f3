"""Signatures and certificates shared by every party: the WS-Security transport signature (`wss`), the
payload EDS (`xmldsig`), certificate trust and revocation (`certs`), IIN/BIN (`identity`)."""
