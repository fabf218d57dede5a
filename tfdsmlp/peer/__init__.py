"""`python -m tfdsmlp bench --peer fuxictr`: the PyTorch reference library
timed beside tfdsmlp in the same run (`runner`). The peer runs in its own
environment (`make peer`), never in the package's: `fuxictr_peer.py` is a
script for that environment and imports nothing from here."""
