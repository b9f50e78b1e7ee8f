"""A scope for the Keras global dtype policy, so that sublayers built in a constructor get a policy."""

import contextlib

import keras


@contextlib.contextmanager
def dtype_policy_scope(policy):
    """Sets the Keras global dtype policy inside the block and restores the previous one afterwards.

    Args:
        policy: str, `keras.DTypePolicy` or None. None leaves the global policy as it is.
    """
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
