"""Synthetic BOSS-like spectra (`spectra`) and writers of the real survey file layouts
(`layouts`): a fixture factory for tests, the training set of the demo model, and the
benchmark workload. numpy + astropy only."""
