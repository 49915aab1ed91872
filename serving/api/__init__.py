"""HTTP endpoints, one blueprint per API area."""
