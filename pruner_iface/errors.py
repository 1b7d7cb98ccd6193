"""Exception types. Every error names the module, key or value at fault and what is allowed."""


class PrunerError(Exception):
    """Base class of every error raised by pruner_iface."""


class ConfigError(PrunerError, ValueError):
    """A part, option or config value is not valid; the message names its key path."""


class UnknownNameError(ConfigError):
    """A name was looked up in a registry that does not know it."""


class InputError(PrunerError, ValueError):
    """Example inputs, data or callbacks do not fit the model."""


class MissingDataError(InputError):
    """A metric needs `data` (and `loss_fn`) but none was given."""


class ObjectiveNotReachedError(PrunerError):
    """The allocator could not meet the step objective; the model is left as before the step."""


class SpeedUpError(PrunerError):
    """speed_up does not apply to a pruned module (yet)."""
