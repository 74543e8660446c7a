"""The exchange: instruments, accounts, orders and fills, the gateway and the web pages."""
