"""The names of ``ray.tune``, for ``from trainable import tune``."""

from trainable import *  # noqa: F401,F403
from trainable import __all__  # noqa: F401
from trainable import schedulers, search, stoppers, utils  # noqa: F401
