"""The only stage that knows all others: configs, the CLI and the grid runner."""
