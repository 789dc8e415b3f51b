"""Whole torchvision models' weights -> fnn (params, state); filled in below."""
from __future__ import annotations

__all__: list[str] = []
