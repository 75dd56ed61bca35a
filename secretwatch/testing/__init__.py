"""Test helpers for code that follows rotated secrets: write volumes as the kubelet does.

``AtomicVolume`` writes a directory with the kubelet's atomic-writer steps, in its order,
so your tests meet the same events and intermediate states as a pod. With secretwatch
installed, pytest also has a ``secret_volume`` fixture (an ``AtomicVolume`` in
``tmp_path``). ``FakeAICore`` is a stand-in for the AI Core generic secrets API on
127.0.0.1, which can project accepted updates into such a volume.
"""

from secretwatch.testing._aicore import FakeAICore, RecordedRequest
from secretwatch.testing._volume import AtomicVolume

__all__ = ["AtomicVolume", "FakeAICore", "RecordedRequest"]
