"""`make bench`: the flash-sale benchmark. `python -m bench --help` lists the flags."""
