"""The test kit: pytest plugin, FakeWaveSpeed client, journal assertions, in-process transport, conformance runner."""
