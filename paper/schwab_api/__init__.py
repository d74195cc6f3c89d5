"""A paper Schwab Trader API: the endpoints and the streamer schwab-py uses, over the paper venue."""
