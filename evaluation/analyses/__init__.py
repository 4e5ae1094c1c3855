"""The analyses people run on a classifier's stored outputs: label issues, near-duplicates, uncertain items, confusion,
distance matrices and how well each cheap metric follows cross-entropy (`ANALYSES`, one module per kind)."""

from .catalog import ANALYSES as ANALYSES
from .catalog import run_analysis as run_analysis
from .options import AnalysisOptions as AnalysisOptions
from .options import AnalysisResult as AnalysisResult
from .reading import Selection as Selection
