"""c3po compiler: spec front end, IR and target driver.

The public API is small: load a spec into a checked IR, and find targets.
"""

from .ir import Program
from .loader import Loaded, load_program
from .problems import Loc, Problem, SpecError
from .target_api import Target, available_targets, load_target

__all__ = ["Loaded", "Loc", "Problem", "Program", "SpecError", "Target", "available_targets", "load_program",
           "load_target"]
