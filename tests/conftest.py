import os
import sys

# Make `tests._helpers` importable regardless of how pytest was started.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
