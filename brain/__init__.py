"""The demo brain: stand-in agents that trade the paper venue through the floor (``floor brain``)."""
