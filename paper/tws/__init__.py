"""The TWS API, server side: what the paper gateway speaks to ib_async and IB's own client.

Layered like ib_async, mirrored:

- :mod:`paper.tws.codec` — framing and field encoding (bytes <-> field lists), no I/O;
- :mod:`paper.tws.incoming` — client -> server messages decoded into frozen dataclasses;
- :mod:`paper.tws.outgoing` — server -> client messages encoded as frames;
- :mod:`paper.tws.session` — one client connection: handshake state machine, pacing, writes;
- :mod:`paper.tws.hub` — the gateway's state: clients by id, routing of venue events, requests
  turned into :class:`paper.venue.client.VenueClient` calls;
- :mod:`paper.tws.orders`, :mod:`paper.tws.market`, :mod:`paper.tws.depth` — order
  translation, L1/L2 fan-out and positional depth rows.

Server version 178 (ib_async 2.1.0's maximum); layouts follow ``tws-protocol.md``.
"""
