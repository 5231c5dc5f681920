"""The Trade-offs page's helpers: its sections and controls (parts), its tables (views) and its
figures and the request stream (figures)."""
