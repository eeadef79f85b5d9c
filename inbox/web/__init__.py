"""The web application: health, JSON API, and the routers other areas plug in."""
