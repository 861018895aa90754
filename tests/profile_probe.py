"""Run by test_profiles (by path, so the suite does not collect it): which profile does a
plain ``pytest`` run give a notebook's kernel?"""

import os


def test_the_profile_is_smoke() -> None:
    assert os.environ.get("NB_PROFILE") == "smoke", os.environ.get("NB_PROFILE")
