"""Outgoing webhooks: endpoints per tenant, events written with their cause, deliveries by the runner."""
