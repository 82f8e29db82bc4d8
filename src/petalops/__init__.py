"""petalops: from training data to a monitored production classifier."""

__version__ = "0.1.0"
