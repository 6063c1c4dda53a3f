"""routewarden: admission webhook for shared Gateway API gateways."""

__version__ = "0.1.0"
__all__ = ["__version__"]
