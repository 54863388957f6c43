"""Ports: the contracts between the services and what they drive.

Protocols (repositories, unit of work, the engine, the replica link), the value types
they exchange and the errors they raise. A port imports nothing of llamaql but other
ports, so every layer may depend on it.
"""
