"""Product search: an OpenSearch read model of the catalog, rebuilt from PostgreSQL whenever needed.

- `documents` builds one document per product from PostgreSQL; an unpublished
  or deleted product gets a tombstone document instead.
- `indexer` writes documents with the catalog version as an external version.
- `reindex` builds a fresh index and swaps the alias to it.
- `drift` compares PostgreSQL with the index and repairs the difference.
- `query` runs the storefront search.

The mappings and index settings live in `index.json` next to this file.
Nothing that decides a price, a stock level or an order reads from here.
"""
