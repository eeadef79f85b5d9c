"""Point-of-contact rules as data (``*.yaml`` here) and the small engine that applies them."""
