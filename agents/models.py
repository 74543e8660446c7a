"""Agent configuration models arrive with the agents runner."""
