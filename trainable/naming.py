"""The two generations of Trainable hook names, mapped in one place.

Ray Tune 0.x named the hooks with a leading underscore (``_setup``,
``_train``, ...); Ray Tune 1.0 renamed them (``setup``, ``step``, ...).
A class may use either generation. When a class is created,
:func:`adopt_classic_hooks` points each current name at the classic method
the class defines, so the rest of the package calls the current names only.
"""

from typing import Dict

from trainable.errors import TrainableDefinitionError

#: classic name -> current name
CLASSIC_TO_CURRENT: Dict[str, str] = {
    "_setup": "setup",
    "_train": "step",
    "_save": "save_checkpoint",
    "_restore": "load_checkpoint",
    "_stop": "cleanup",
    "_export_model": "export_model",
    "_log_result": "log_result",
}


def adopt_classic_hooks(cls: type) -> None:
    """Alias the current hook names of ``cls`` to its classic hooks.

    Only the attributes defined in ``cls`` itself are looked at, so a
    subclass may override a hook under either name and the most derived
    definition wins, as with ordinary inheritance.

    Raises:
        TrainableDefinitionError: ``cls`` defines both names of one hook.
    """
    own = vars(cls)
    for classic, current in CLASSIC_TO_CURRENT.items():
        if classic not in own:
            continue
        if current in own:
            raise TrainableDefinitionError(
                f"{cls.__qualname__} defines both {classic}() and "
                f"{current}(), which are two names of one hook. Keep "
                f"{current}() (the current name) and delete {classic}()."
            )
        setattr(cls, current, own[classic])
