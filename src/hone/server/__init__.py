"""``hone ui``: the web UI and the JSON API under ``/api`` its pages read (layer 4).

Every endpoint calls the functions the CLI calls (tracking queries, the data, models and
predictions libraries); the pages are a small compiled front end (``ui/`` at the
repository's root, built into ``static/`` by the Makefile) that only reads that API.
"""
