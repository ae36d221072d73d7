"""Libraries the test harness uses (server stand-ins, data generators, manifests)."""
