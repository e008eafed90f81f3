"""The checkpoint writer resumes where the file ends, read from its end whatever the lines' length."""
from __future__ import annotations

import json

from gateway.checkpoints import _last_seq


def test_the_last_checkpoint_is_read_from_the_end(tmp_path):
    path = tmp_path / "journal-checkpoints.jsonl"
    assert _last_seq(path) == 0
    path.write_text("".join(json.dumps({"seq": seq, "hashes": ["ab" * 32] * seq}) + "\n" for seq in range(1, 40)))
    assert _last_seq(path) == 39
    assert _last_seq(path, block=7) == 39  # a last line much longer than one read
    path.write_text(json.dumps({"seq": 3}) + "\n")
    assert _last_seq(path, block=4) == 3
