"""Online ranking: the serving bundle, the ranker over the Feast online store and the
registry champion, and the HTTP API models (the Ray Serve app in ``serving/`` is a thin adapter)."""
