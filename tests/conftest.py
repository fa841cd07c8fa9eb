"""Shared test set-up."""

import os

from hypothesis import settings

# CI and local runs use the same profile; examples counts are set per test where they matter.
settings.register_profile("emunet", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "emunet"))
