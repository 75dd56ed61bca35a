"""secretwatch's benchmarks, side by side with what users would otherwise do.

    pip install -e '.[bench]'
    python -m benchmarks            # every benchmark: a table, and results.json
    python -m benchmarks --smoke    # tiny sizes: checks that they run (CI does this)

Figures are ratios to a peer measured in the same run, since machines vary and are noisy.
``python -m benchmarks.soak`` is separate: a long run that checks resources stay flat.
"""
