"""The library version, in one place the whole package can import (foundation layer)."""

__version__ = "0.1.0"
