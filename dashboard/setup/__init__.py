"""The Setup page's helpers: its controls and tables (parts), the upload of a user's own data
(upload_parts), its pure tables and sentences (views), a layout in the URL (share)."""
