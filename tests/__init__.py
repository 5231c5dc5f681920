"""The test suite mirrors purge_engine/ (a test_<module>.py per module), with dashboard/ (AppTest) and
e2e/ (Playwright)."""
