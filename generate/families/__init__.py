"""One module per generative family: its networks and losses, registered by name."""
