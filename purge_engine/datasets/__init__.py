"""Datasets: the built-in specs (specs.py), where each comes from (sources.py), the readers that make a
DatasetBundle (readers.py), text as token ids (text.py), and the user's own imported data (userdata.py).
Importing the package imports none of them."""
