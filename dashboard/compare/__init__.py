"""The Compare page's helpers: its sections (parts), its ledger, cost and accuracy tables (views)
and figures (figures)."""
