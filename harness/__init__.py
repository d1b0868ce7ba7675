"""hospital-drill: chaos-engineering drills for internet hospitals."""
__version__ = "0.1.0"
