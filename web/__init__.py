"""Local web service over :mod:`staging`: upload an EDF, check the montage, get the hypnogram.

Start it with ``python -m web`` (see ``docs/web.md``); in Python, :func:`web.app.create_app`
builds the ASGI app. Every call into the staging pipeline goes through :mod:`web.adapter`.
"""
