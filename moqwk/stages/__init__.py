"""The stages a run goes through: the search loop, the selector, compare, status."""
