"""Admin registrations for the agent models (none yet)."""
