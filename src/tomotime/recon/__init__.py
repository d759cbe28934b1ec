"""Self-supervised reconstructions trained on the measured data alone."""
