"""The edges' plumbing: atomic writes, artifacts, progress events, config-field declarations."""
