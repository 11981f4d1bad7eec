"""yekuo-hub: composition root, settings, errors and command line of the integration hub."""
