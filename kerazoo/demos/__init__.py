"""What `kerazoo demo ...` runs; importing registers the demos."""

from kerazoo.demos import stereo

__all__ = ["stereo"]
