"""The study is not a package of the library: its modules import each other by name from their folder."""

import os
import sys

from tests.conftest import ROOT

STUDY_DIR = os.path.join(ROOT, "experiments", "camvid_study")
if STUDY_DIR not in sys.path:
    sys.path.insert(0, STUDY_DIR)
