"""Migration steps; see :mod:`paperwire.store.migrate`."""
