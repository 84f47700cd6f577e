"""docs/api-reference.md is every exported name's signature and docstring as the code has them now
(docs/generate_api.py)."""

import bnbench


def test_api_reference_is_current(docs_script):
    generate = docs_script("generate_api")
    assert generate.TARGET.read_text() == generate.render(), (
        "docs/api-reference.md is stale: python docs/generate_api.py"
    )


def test_api_reference_has_every_exported_name(docs_script):
    text = docs_script("generate_api").render()
    for name in bnbench.__all__:
        assert f"## `bnbench.{name}" in text, name
    assert "#### `Comparison.table`" in text and "#### `Run.batches`" in text
