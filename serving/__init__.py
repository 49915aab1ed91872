"""The real-time prediction service: Flask app, host agent, model pool, routing (see design.md)."""
