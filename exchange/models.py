"""Exchange models (instruments, accounts, orders, fills) arrive with the gateway and recorder."""
