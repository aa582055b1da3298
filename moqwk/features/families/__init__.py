"""Feature families, one module each; :mod:`moqwk.features.registry` lists them in column order.

See :mod:`moqwk.features.family` for the interface and how a new family plugs in.
"""
