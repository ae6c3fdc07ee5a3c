"""What `kerazoo demo ...` runs; importing registers the demos."""

from kerazoo.demos import chapter, price, stereo

__all__ = ["chapter", "price", "stereo"]
