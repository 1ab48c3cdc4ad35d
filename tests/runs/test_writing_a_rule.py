"""docs/writing_a_rule.md: its code is docs/examples/writing_a_rule.py's, word for word, and the three rules
it writes (FA-family backward, DFA-family output node, objective) train fj.mlp and a wrapped Flax MLP
through fj.sweep, the objective's metric reaching the result."""

import re

import numpy as np
from repository import ROOT, load_script

script = load_script("docs/examples/writing_a_rule.py", "writing_a_rule")


def test_every_code_block_of_the_page_is_the_scripts_code():
    page = (ROOT / "docs" / "writing_a_rule.md").read_text()
    source = (ROOT / "docs" / "examples" / "writing_a_rule.py").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", page, flags=re.S | re.M)
    assert len(blocks) == 3
    for block in blocks:
        assert block in source, block.splitlines()[0]


def test_the_pages_rules_train_both_models_through_sweep():
    rows = script.run(n=6, k=2, width=8, seeds=1, steps=4, eval_every=2, progress=False)
    assert [(r["rule"], r["model"]) for r in rows] == [(r, m) for r in ["bp", "sign_fa", "unit_dfa", "wp"]
                                                      for m in ["fj.mlp", "from_flax"]]
    assert all(np.isfinite(r["acc_mean"]) for r in rows)
    assert [r["rule_metrics"] for r in rows if r["rule"] == "wp"] == [["directional_derivative"]] * 2
    assert "| wp | from_flax |" in script.table(rows)
