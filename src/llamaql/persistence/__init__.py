"""Persistence: the database engine and sessions, each user's share of it,
its health probe, the tables (models), the repositories and unit of work, the
migrations and the replica link (LISTEN/NOTIFY). May import ports and config only.
"""
