"""Outbound connectors to cloud services; each is off unless an admin enables it in settings."""
