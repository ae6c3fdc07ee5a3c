"""Choice lists shared by the library and the command line.

Plain data: importing this module loads nothing else, so `kerazoo --help`
can show the choices without importing Keras.
"""

# How SiameseEncoder merges its two encodings.
SIAMESE_MERGES = ("concat", "abs_diff", "product", "cosine", "euclidean")
# How StereoXception returns the two views' features.
STEREO_OUTPUT_MODES = ("concat", "both")
# kerazoo.distribute.scope's strategies.
STRATEGIES = ("none", "mirrored", "data-parallel")
# kerazoo.export's formats (Keras's `model.export`).
EXPORT_FORMATS = ("onnx", "tf_saved_model", "litert")
# The stereo demo's precisions for its features (`auto`: by backend and CPU).
STEREO_PRECISIONS = ("auto", "float32", "mixed_bfloat16")
# The stereo matcher's networks (kerazoo.stereo.stem.xception_stem).
STEREO_QUALITIES = ("fast", "accurate")
