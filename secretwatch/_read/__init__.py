"""Reading a volume: one consistent version of its bytes, decoded and validated.

Pure functions over the file system: no threads, no events, no state kept between calls.
May import only the leaves (``secretwatch._errors``). Entry points:
:func:`volume.read_volume` (the bytes of one version, every key from one ``..data``),
:func:`load.build_snapshot` (decoded and validated), :class:`snapshot.Snapshot`.
"""
