"""Search: lexical index, embeddings, vector index, hybrid search, similar papers.

Public entry points: :func:`paperwire.index.search.search`, :func:`paperwire.index.search.similar`,
:func:`paperwire.index.build.update_index`. Importing this package loads no model.
"""
