"""The Forget page's helpers: the selection, preview and results (parts), the evidence panel
(evidence_parts), and pure builders: tables and the with/without view (views), the membership
figure (figures), the per-sample evidence (evidence_views), canaries and the approximate contrast
(canary_views)."""
