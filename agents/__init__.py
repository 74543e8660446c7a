"""Trading agents: their configurations, strategies and the runners."""
