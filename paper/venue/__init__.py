"""The simulated exchange and account behind the paper gateways.

``engine.Venue`` is the pure, deterministic core (it wires ``flow``, ``book``, ``matching``,
``stops``, ``validation``, ``faults`` and ``account``); ``server`` runs it as a process
(``python -m paper.venue``); ``client.VenueClient`` is what gateways use to talk to it.
"""
