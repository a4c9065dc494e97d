"""The pure core: money (SPEC §4), amounts, statuses and terms. Imports neither Flask nor SQLAlchemy."""
