"""mltui: monitor and operate deployed ML models from the terminal."""

__version__ = "0.1.0"
