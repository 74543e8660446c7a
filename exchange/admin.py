"""Admin registrations for the exchange models (none yet)."""
