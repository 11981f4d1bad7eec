"""What every layer of the hub stands on: errors, settings, clock, logging, metrics, SOAP hardening and the
shared web server. Nothing here imports the rest of the project."""
