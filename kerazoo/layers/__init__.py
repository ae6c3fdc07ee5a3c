"""kerazoo's Keras layers; importing this module registers them with Keras."""

from kerazoo.layers.correlation_volume import CorrelationVolume
from kerazoo.layers.hub_layer import HubLayer
from kerazoo.layers.inception_block import InceptionBlock
from kerazoo.layers.pixel_phases import MergePixelPhases, PixelPhases
from kerazoo.layers.residual_block import ResidualBlock
from kerazoo.layers.siamese_encoder import SiameseEncoder
from kerazoo.layers.stereo_xception import StereoXception

__all__ = [
    "CorrelationVolume",
    "HubLayer",
    "InceptionBlock",
    "MergePixelPhases",
    "PixelPhases",
    "ResidualBlock",
    "SiameseEncoder",
    "StereoXception",
]
