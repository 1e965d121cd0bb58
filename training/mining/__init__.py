"""Git → the 15 change metrics and SZZ labels of ../shared/METRICS.md (the only package that imports git)."""
