"""The Mapping page's helpers: its graph controls (parts) and its pure figures and sentences (figures)."""
