"""HTTP serving of registered taggers on Ray Serve (see :mod:`raytag.serving.app`)."""
