"""The classic ``track`` API of Ray Tune 0.x: ``track.log(**metrics)``."""

from trainable.function import report as log

__all__ = ["log"]
