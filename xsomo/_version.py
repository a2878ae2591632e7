"""The package version, in one small module that every other module may import."""

__version__ = "0.1.0"
