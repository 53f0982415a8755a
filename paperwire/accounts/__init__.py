"""Accounts that last: personal API tokens, signed account links (verify, reset, change
of address) and their mail, profiles and avatars, and the admin's user actions.

The web and the CLI are thin adapters over these modules; all SQL is in
``paperwire.store.tokens`` and ``paperwire.store.profiles``.
"""
