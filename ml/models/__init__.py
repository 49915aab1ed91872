"""The example models rtml ships: one module per model, named by its config's model_class."""
