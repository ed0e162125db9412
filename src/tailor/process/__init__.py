"""The processing loop: committed events pass, micro-batch by micro-batch, through ordered stages."""

from tailor.process.processor import Processor
from tailor.process.stage import Batch, SqlStep, Stage, run_steps

__all__ = ["Batch", "Processor", "SqlStep", "Stage", "run_steps"]
